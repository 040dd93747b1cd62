"""What machine is this? A device fingerprint from /proc, /etc and the platform module, and its profile.

Only the standard library is used: nothing here imports numpy, torch or a backend, and package versions
come from ``importlib.metadata`` (which reads metadata files, it never imports the package).

Every probe is best effort: a missing file, a permission error, an absent command or a timeout gives
``None`` for that field, never an exception. ``root`` redirects the file reads (``/proc/cpuinfo``,
``/proc/device-tree/model``, ``/etc/nv_tegra_release``) so tests can describe another machine in a
temporary tree; the fields that come from this process (``os``, ``python``, ``cores_logical``,
``cores_usable``, ``versions``) always describe the host, and ``machine`` does unless it is given.
External commands (``nvidia-smi``, ``dpkg-query``) run only when ``commands`` is true, by default only
for the real root ``/``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from edgepose.backends import backends
from edgepose.utils.cores import usable_cores

# ISA flags worth reporting: they decide which INT8 / BF16 kernels a backend can use.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
             "neon", "asimddp", "i8mm", "sve")

# Distribution names whose versions the fingerprint reports (when installed).
PACKAGES = ("numpy", "opencv-python-headless", *(d for b in backends() for d in b.distributions), "torch",
            "litert-torch")

# ARM "CPU implementer" / "CPU part" → core name, for the SoCs edgepose has profiles for.
ARM_PARTS = {("0x41", "0xd03"): "Cortex-A53", ("0x41", "0xd07"): "Cortex-A57", ("0x41", "0xd08"): "Cortex-A72",
             ("0x41", "0xd0b"): "Cortex-A76", ("0x41", "0xd42"): "Cortex-A78AE", ("0x41", "0xd0c"): "Neoverse-N1",
             ("0x41", "0xd40"): "Neoverse-V1", ("0x41", "0xd4f"): "Neoverse-V2", ("0x4e", "0x004"): "NVIDIA Carmel"}

# L4T release → JetPack version (NVIDIA's release notes); used when dpkg cannot tell.
L4T_TO_JETPACK = {"32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
                  "32.7.5": "4.6.5", "32.7.6": "4.6.6", "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1",
                  "35.4.1": "5.1.2", "35.5.0": "5.1.3", "35.6.0": "5.1.4", "36.3.0": "6.0", "36.4.0": "6.1",
                  "36.4.3": "6.2", "36.4.4": "6.2.1"}

# Jetson board model (lower case) → profile; the first rule whose words all occur wins.
JETSON_RULES = ((("agx", "orin"), "jetson-agx-orin"), (("orin", "nx"), "jetson-orin-nx"),
                (("orin", "nano"), "jetson-orin-nano"), (("xavier", "nx"), "jetson-xavier-nx"),
                (("agx", "xavier"), "jetson-agx-xavier"), (("jetson-agx",), "jetson-agx-xavier"),
                (("nano",), "jetson-nano"))

X86_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")
ARM64_MACHINES = ("aarch64", "arm64")  # armv8l is a 32-bit userland on a 64-bit CPU


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace").replace("\x00", "").strip()
    except (OSError, ValueError):
        return None


def _run(argv: list[str], timeout: float = 5.0) -> str | None:
    """stdout of a command when it exists and succeeds within ``timeout`` seconds, else None."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _cpuinfo(root: Path) -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per blank-line separated block (ARM puts Hardware/Model in a last block)."""
    text = _read(root / "proc" / "cpuinfo") or ""
    blocks, block = [], {}
    for line in text.splitlines() + [""]:
        key, sep, value = line.partition(":")
        if sep:
            block[key.strip()] = value.strip()
        elif not line.strip() and block:
            blocks.append(block)
            block = {}
    return blocks


def _first(blocks: list[dict[str, str]], key: str) -> str | None:
    return next((b[key] for b in blocks if b.get(key)), None)


def _cpu_model(blocks: list[dict[str, str]]) -> str | None:
    name = _first(blocks, "model name")
    if name:
        return name
    implementer, part = (_first(blocks, "CPU implementer") or "").lower(), (_first(blocks, "CPU part") or "").lower()
    part = ARM_PARTS.get((implementer, part))
    return part or _first(blocks, "Hardware") or _first(blocks, "Model") or platform.processor() or None


def _isa(blocks: list[dict[str, str]]) -> list[str]:
    words = set((_first(blocks, "flags") or _first(blocks, "Features") or "").split())
    if "asimd" in words:  # AArch64 Advanced SIMD is what 32-bit ARM calls NEON
        words.add("neon")
    return sorted(words & set(ISA_FLAGS))


def _physical_cores(blocks: list[dict[str, str]]) -> int | None:
    pairs = {(b["physical id"], b["core id"]) for b in blocks if "physical id" in b and "core id" in b}
    return len(pairs) or None


def _board(root: Path) -> str | None:
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        text = _read(root / rel)
        if text:
            return text
    return None


def parse_l4t(text: str | None) -> str | None:
    """``# R36 (release), REVISION: 3.0, GCID: ...`` → ``"36.3.0"``; None when the text does not say."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+(?:\.\d+)*)", text or "")
    if not m:
        return None
    revision = m.group(2) if "." in m.group(2) else f"{m.group(2)}.0"
    return f"{m.group(1)}.{revision}"


def _jetson(root: Path, board: str | None, commands: bool) -> dict | None:
    """{"model", "l4t", "jetpack"} on a Jetson (a Jetson/NVIDIA board model or an nv_tegra_release), else None."""
    release = _read(root / "etc" / "nv_tegra_release")
    is_jetson_board = bool(board) and ("jetson" in board.lower() or "nvidia" in board.lower())
    if not is_jetson_board and release is None:
        return None
    l4t = parse_l4t(release)
    jetpack = None
    if commands:
        version = _run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"])
        jetpack = version.split("+")[0].split("-")[0] if version else None
    if jetpack is None and l4t:
        jetpack = L4T_TO_JETPACK.get(l4t)
    return {"model": board if is_jetson_board else None, "l4t": l4t, "jetpack": jetpack}


def _gpu(commands: bool) -> str | None:
    if not commands:
        return None
    out = _run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    return out.splitlines()[0].strip() if out else None


def package_versions() -> dict[str, str]:
    """{distribution: version} for edgepose and each of :data:`PACKAGES` that is installed (none imported)."""
    versions = {}
    for name in ("edgepose", *PACKAGES):
        try:
            versions[name] = importlib.metadata.version(name)
        except (importlib.metadata.PackageNotFoundError, ValueError, OSError):
            if name == "edgepose":
                from edgepose import __version__

                versions[name] = __version__
    return versions


def _label(fp: dict) -> str:
    cores = fp["cores_usable"] or fp["cores_logical"]
    parts = [(fp["jetson"] or {}).get("model") or fp["raspberry_pi"], fp["cpu_model"] or "unknown CPU",
             f"{cores} cores" if cores else None, fp["machine"]]
    return " · ".join(p for p in parts if p)


def fingerprint(root: str | Path = "/", *, machine: str | None = None, commands: bool | None = None) -> dict:
    """Describe this machine (see the module docstring for ``root``, ``machine`` and ``commands``).

    Keys: ``label`` (one human line), ``cpu_model``, ``isa`` (sorted subset of :data:`ISA_FLAGS`),
    ``cores_logical``, ``cores_physical`` (None when /proc/cpuinfo does not tell), ``cores_usable`` (this
    process's CPU affinity), ``os``, ``machine``, ``python``, ``board`` (device-tree model), ``jetson``
    (``{"model", "l4t", "jetpack"}`` or None), ``raspberry_pi`` (model or None), ``gpu`` (nvidia-smi name or
    None), ``versions`` ({distribution: version}, installed ones only, edgepose always), ``profile``
    (:func:`detect_profile`'s answer or None).
    """
    root = Path(root)
    commands = (root == Path("/")) if commands is None else commands
    blocks = _cpuinfo(root)
    board = _board(root)
    fp = {
        "label": "",
        "cpu_model": _cpu_model(blocks),
        "isa": _isa(blocks),
        "cores_logical": os.cpu_count(),
        "cores_physical": _physical_cores(blocks),
        "cores_usable": usable_cores(),
        "os": platform.platform(),
        "machine": machine or platform.machine() or None,
        "python": platform.python_version(),
        "python_bits": 64 if sys.maxsize > 2**32 else 32,  # a 32-bit userland on a 64-bit kernel says aarch64
        "board": board,
        "jetson": _jetson(root, board, commands),
        "raspberry_pi": board if board and board.startswith("Raspberry Pi") else None,
        "gpu": _gpu(commands),
        "versions": package_versions(),
    }
    fp["profile"] = detect_profile(fp)
    fp["label"] = _label(fp)
    return fp


def _jetson_profile(model: str | None) -> str | None:
    words = (model or "").lower()
    return next((name for needed, name in JETSON_RULES if all(w in words for w in needed)), None)


def detect_profile(fp: dict | None = None) -> str | None:
    """The name of the device profile that fits fingerprint ``fp`` (this machine's when None), or None.

    Jetson board → its jetson-* profile (None for a Jetson without a profile, e.g. TX2); Raspberry Pi 4 / 400 /
    CM4 → rpi4, Pi 5 / 500 / CM5 → rpi5; x86 with AMX-INT8 → x86-amx, with AVX512-VNNI or AVX-VNNI →
    x86-vnni, other x86 → x86; other 64-bit ARM → arm64; a 32-bit Python (32-bit Pi OS) → None.
    """
    fp = fingerprint() if fp is None else fp
    if fp.get("python_bits", 64) == 32:
        return None  # no profile's backend ships 32-bit wheels (ai-edge-litert, OpenVINO, ONNX Runtime: 64-bit)
    if fp.get("jetson"):
        return _jetson_profile(fp["jetson"].get("model"))
    m = re.match(r"Raspberry Pi (?:Compute Module )?([45])", fp.get("raspberry_pi") or "")
    if m:
        return f"rpi{m.group(1)}"
    machine = (fp.get("machine") or "").lower()
    isa = set(fp.get("isa") or ())
    if machine in X86_MACHINES:
        if "amx_int8" in isa:
            return "x86-amx"
        if isa & {"avx512_vnni", "avx_vnni"}:
            return "x86-vnni"
        return "x86"
    if machine in ARM64_MACHINES:
        return "arm64"
    return None
