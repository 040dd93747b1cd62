"""Device fingerprints from fake /proc and /etc trees, profile lookup and resolution, the CLI around them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgepose.cli import main
from edgepose.devices import (
    PROFILES,
    DeviceProfile,
    apply_profile,
    detect,
    detect_profile,
    fingerprint,
    get_profile,
    list_profiles,
)
from edgepose.errors import ConfigError
from edgepose.testing import error_line as _one_error_line

ORIN_FEATURES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop "
                 "asimddp uscat ilrcpc flagm")
RPI5_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
X86_AMX_FLAGS = ("fpu vme sse sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx_vnni avx512_bf16 amx_bf16 amx_tile "
                 "amx_int8 avx512_fp16")
X86_PLAIN_FLAGS = "fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma"


def _arm_cpuinfo(features: str, part: str, n: int = 4, implementer: str = "0x41", extra: str = "") -> str:
    blocks = [f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: {implementer}\n"
              f"CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: {part}\nCPU revision\t: 1\n" for i in range(n)]
    return "\n".join(blocks) + "\n" + extra


def _x86_cpuinfo(model: str, flags: str, cores: int = 4, threads_per_core: int = 2) -> str:
    blocks = []
    for i in range(cores * threads_per_core):
        blocks.append(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\nphysical id\t: 0\n"
                      f"core id\t\t: {i % cores}\nflags\t\t: {flags}\n")
    return "\n".join(blocks)


def _tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


@pytest.fixture
def orin_nx(tmp_path) -> Path:
    return _tree(tmp_path, {
        "proc/cpuinfo": _arm_cpuinfo(ORIN_FEATURES, "0xd42", n=8),
        "proc/device-tree/model": b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00",
        "etc/nv_tegra_release": "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, "
                                "DATE: Mon May  6 17:34:21 UTC 2024\n# KERNEL_VARIANT: oot\n",
    })


def test_jetson_orin_nx(orin_nx):
    fp = fingerprint(orin_nx, machine="aarch64")
    assert fp["jetson"] == {"model": "NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "l4t": "36.3.0",
                            "jetpack": "6.0"}
    assert fp["profile"] == "jetson-orin-nx" == detect_profile(fp)
    assert fp["cpu_model"] == "Cortex-A78AE"
    assert fp["isa"] == ["asimddp", "neon"]
    assert fp["cores_physical"] is None  # ARM cpuinfo has no core ids
    assert fp["raspberry_pi"] is None and fp["gpu"] is None  # no nvidia-smi run for a fake root
    assert fp["label"].startswith("NVIDIA Jetson Orin NX") and "aarch64" in fp["label"]


def test_jetson_nano_l4t_32(tmp_path):
    root = _tree(tmp_path, {
        "proc/cpuinfo": _arm_cpuinfo("fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid", "0xd07"),
        "sys/firmware/devicetree/base/model": b"NVIDIA Jetson Nano Developer Kit\x00",
        "etc/nv_tegra_release": "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64\n",
    })
    fp = fingerprint(root, machine="aarch64")
    assert fp["jetson"]["l4t"] == "32.7.1" and fp["jetson"]["jetpack"] == "4.6.1"
    assert fp["profile"] == "jetson-nano" and fp["cpu_model"] == "Cortex-A57"


@pytest.mark.parametrize("model, profile", [
    ("NVIDIA Jetson AGX Orin Developer Kit", "jetson-agx-orin"),
    ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "jetson-orin-nano"),
    ("NVIDIA Jetson Xavier NX Developer Kit", "jetson-xavier-nx"),
    ("Jetson-AGX", "jetson-agx-xavier"),
    ("NVIDIA Jetson Nano Developer Kit", "jetson-nano"),
    ("NVIDIA Jetson TX2 Developer Kit", None),
])
def test_jetson_models(model, profile):
    assert detect_profile({"jetson": {"model": model}, "machine": "aarch64"}) == profile


def test_raspberry_pi_5(tmp_path):
    root = _tree(tmp_path, {
        "proc/cpuinfo": _arm_cpuinfo(RPI5_FEATURES, "0xd0b", extra="Revision\t: d04170\n"
                                     "Model\t\t: Raspberry Pi 5 Model B Rev 1.0\n"),
        "proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\x00",
    })
    fp = fingerprint(root, machine="aarch64")
    assert fp["raspberry_pi"] == "Raspberry Pi 5 Model B Rev 1.0" and fp["jetson"] is None
    assert fp["profile"] == "rpi5"
    assert fp["isa"] == ["asimddp", "neon"]
    assert fp["cpu_model"] == "Cortex-A76"


@pytest.mark.parametrize("board, profile", [
    ("Raspberry Pi 4 Model B Rev 1.5", "rpi4"), ("Raspberry Pi 400 Rev 1.0", "rpi4"),
    ("Raspberry Pi Compute Module 4 Rev 1.0", "rpi4"), ("Raspberry Pi 3 Model B Plus Rev 1.3", "arm64"),
])
def test_raspberry_pi_models(board, profile):
    assert detect_profile({"jetson": None, "raspberry_pi": board, "machine": "aarch64", "isa": []}) == profile


def test_a_32_bit_userland_gets_no_profile():
    """32-bit Pi OS on a 64-bit kernel reports aarch64; no backend ships 32-bit ARM wheels."""
    fp = {"jetson": None, "raspberry_pi": "Raspberry Pi 4 Model B Rev 1.5", "machine": "aarch64", "isa": []}
    assert detect_profile(fp) == "rpi4" and detect_profile(dict(fp, python_bits=32)) is None
    assert detect_profile({"jetson": None, "raspberry_pi": None, "machine": "armv8l", "isa": []}) is None


def test_arm_without_model_name_falls_back_to_model_line(tmp_path):
    root = _tree(tmp_path, {"proc/cpuinfo": _arm_cpuinfo("fp asimd", "0xfff", extra="Model\t: Some Board\n")})
    assert fingerprint(root, machine="aarch64")["cpu_model"] == "Some Board"


def test_x86_amx(tmp_path):
    root = _tree(tmp_path, {"proc/cpuinfo": _x86_cpuinfo("Intel(R) Xeon(R) Platinum 8480+", X86_AMX_FLAGS)})
    fp = fingerprint(root, machine="x86_64")
    assert fp["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert fp["isa"] == ["amx_bf16", "amx_int8", "amx_tile", "avx2", "avx512_vnni", "avx512f", "avx_vnni"]
    assert fp["cores_physical"] == 4
    assert fp["profile"] == "x86-amx"


def test_x86_plain_and_vnni(tmp_path):
    root = _tree(tmp_path, {"proc/cpuinfo": _x86_cpuinfo("Intel(R) Core(TM) i5-7500", X86_PLAIN_FLAGS, 4, 1)})
    fp = fingerprint(root, machine="x86_64")
    assert fp["isa"] == ["avx2"] and fp["profile"] == "x86" and fp["cores_physical"] == 4
    assert detect_profile({**fp, "isa": ["avx2", "avx_vnni"]}) == "x86-vnni"


def test_empty_root_never_raises(tmp_path):
    fp = fingerprint(tmp_path, machine="riscv64")
    assert fp["isa"] == [] and fp["jetson"] is None and fp["board"] is None and fp["profile"] is None
    assert fp["label"]


def test_unreadable_files_give_none(tmp_path):
    root = _tree(tmp_path, {"etc/nv_tegra_release": "garbage"})
    (tmp_path / "proc" / "cpuinfo").mkdir(parents=True)  # a directory where a file is expected: read fails
    fp = fingerprint(root, machine="aarch64")
    assert fp["jetson"] == {"model": None, "l4t": None, "jetpack": None} and fp["profile"] is None


def test_commands_are_robust(tmp_path, monkeypatch):
    calls = []

    def fake_run(argv, timeout=5.0):
        calls.append(argv[0])
        return {"nvidia-smi": "NVIDIA H100 80GB HBM3\n", "dpkg-query": "6.1+b123"}.get(argv[0])

    monkeypatch.setattr(detect, "_run", fake_run)
    root = _tree(tmp_path, {"proc/device-tree/model": "NVIDIA Jetson AGX Orin Developer Kit",
                            "etc/nv_tegra_release": "# R36 (release), REVISION: 4.0, GCID: 1"})
    fp = fingerprint(root, machine="aarch64", commands=True)
    assert fp["gpu"] == "NVIDIA H100 80GB HBM3" and fp["jetson"]["jetpack"] == "6.1"
    assert sorted(calls) == ["dpkg-query", "nvidia-smi"]


def test_run_helper_handles_missing_and_slow_commands():
    assert detect._run(["edgepose-no-such-command-xyz"]) is None
    assert detect._run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2) is None
    assert detect._run([sys.executable, "-c", "print('ok')"]) == "ok"


def test_this_machine():
    fp = fingerprint()
    assert fp["cpu_model"] and fp["cores_logical"] >= 1 and fp["cores_usable"] >= 1
    assert fp["versions"]["edgepose"] and fp["python"] and fp["machine"]
    assert fp["profile"] is None or fp["profile"] in PROFILES
    json.dumps(fp)  # a benchmark report embeds it


def test_versions_never_import_packages():
    code = ("import sys, json; from edgepose.devices import fingerprint; fingerprint(); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'onnxruntime', 'openvino', 'nncf', 'ai_edge_litert', 'tensorrt', 'numpy', 'cv2'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_profiles_registry():
    names = list_profiles()
    for expected in ("jetson-nano", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-orin-nano", "jetson-orin-nx",
                     "jetson-agx-orin", "rpi4", "rpi5", "x86-vnni", "x86-amx", "x86", "arm64"):
        assert expected in names
    nano = get_profile("jetson-nano")
    assert isinstance(nano, DeviceProfile) and not nano.int8_supported and nano.precision == "fp16"
    assert get_profile("jetson-orin-nano").dla is False and get_profile("jetson-orin-nx").dla is True
    assert get_profile("rpi5").threads == 4 and get_profile("rpi5").target == "tflite"
    assert "openvino" in get_profile("rpi4").notes.lower()
    with pytest.raises(dataclasses.FrozenInstanceError):
        nano.precision = "int8"  # frozen


def test_unknown_profile_suggests():
    with pytest.raises(ConfigError, match="did you mean 'jetson-orin-nx'"):
        get_profile("jetson-orin-nz")


def test_apply_profile_fills_in():
    r = apply_profile("jetson-orin-nx", target=None, precision=None, threads=None)
    assert (r.target, r.precision, r.threads) == ("tensorrt", "int8", None)
    assert r.notes[0].startswith("jetson-orin-nx") and "DLA" in r.notes[0]
    target, precision, threads, notes = apply_profile("rpi5", target="openvino", precision="fp32", threads=2)
    assert (target, precision, threads) == ("openvino", "fp32", 2)
    assert any("recommends --target tflite" in n for n in notes)


@pytest.mark.parametrize("profile, kw, message", [
    ("jetson-nano", {"precision": "int8"}, "jetson-nano: its Maxwell GPU .* has no INT8 support; use --precision fp16"),
    ("jetson-nano", {"target": "all", "precision": "int8"}, "no INT8 support"),
    ("rpi5", {"target": "tensorrt"}, "TensorRT needs an NVIDIA GPU.*use --target tflite"),
    ("x86", {"target": "tensorrt"}, "use --target openvino"),
    ("rpi4", {"threads": 0}, "threads must be >= 1"),
    ("rpi4", {"precision": "int4"}, "precision 'int4' is not one of"),
    ("rpi4", {"target": "tflit"}, "did you mean 'tflite'"),
])
def test_apply_profile_contradictions(profile, kw, message):
    with pytest.raises(ConfigError, match=message):
        apply_profile(profile, **{"target": None, "precision": None, "threads": None, **kw})


def test_jetson_nano_int8_on_its_cpu_is_allowed():
    assert apply_profile("jetson-nano", target="tflite", precision="int8", threads=None).precision == "int8"


# ---- CLI --------------------------------------------------------------------------------------------------------


def test_cli_devices_table(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for name in list_profiles():
        assert name in out
    detected = detect_profile()
    if detected:
        assert f"*{detected} " in out


def test_cli_devices_json(capsys):
    assert main(["devices", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["profiles"]] == list_profiles()
    assert doc["detected"] == doc["fingerprint"]["profile"]


def test_cli_doctor_shows_device(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "device: " in out and "ISA flags:" in out and "profile:" in out


def test_cli_export_device_contradiction(capsys, tmp_path):
    out_dir = tmp_path / "X"
    code = main(["export", "--device", "jetson-nano", "--precision", "int8", "--calib", "synthetic:8",
                 "--model", "simplebaseline-mnv2s-edge", "--out", str(out_dir)])
    line = _one_error_line(capsys.readouterr().err)
    assert code != 0 and "jetson-nano" in line and "use --precision fp16" in line
    assert not out_dir.exists()


def test_cli_export_unknown_device(capsys, tmp_path):
    code = main(["export", "--device", "rpi6", "--model", "simplebaseline-mnv2s-edge", "--out", str(tmp_path / "b")])
    line = _one_error_line(capsys.readouterr().err)
    assert code != 0 and "unknown device profile 'rpi6'" in line and "did you mean" in line
    assert not (tmp_path / "b").exists()


def test_cli_export_profile_int8_needs_calib(capsys, tmp_path):
    code = main(["export", "--device", "rpi5", "--model", "simplebaseline-mnv2s-edge", "--out", str(tmp_path / "b")])
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert code != 0 and "--device rpi5 (int8) needs --calib" in line and "--precision fp16/fp32" in line
    assert "note: rpi5" in captured.out
    assert not (tmp_path / "b").exists()


def test_cli_export_target_still_required_without_device(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--model", "simplebaseline-mnv2s-edge", "--out", str(tmp_path / "b")])
    assert exc.value.code == 2
    assert "the following arguments are required: --target" in capsys.readouterr().err


@pytest.mark.openvino
def test_cli_export_target_from_profile(capsys, tmp_path):
    from edgepose.runtimes import openvino as ov_backend
    from edgepose.runtimes import unavailable_reason

    if not ov_backend.is_available():
        pytest.skip(f"openvino missing: {unavailable_reason('openvino')}")
    out_dir = tmp_path / "b"
    assert main(["export", "--device", "x86-vnni", "--precision", "fp32", "--model", "simplebaseline-mnv2s-edge",
                 "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "note: x86-vnni: target openvino from the profile" in out
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert (manifest["target"], manifest["precision"]) == ("openvino", "fp32")
    assert manifest["device_profile"] == {"name": "x86-vnni", "threads": None}


@pytest.mark.tflite
def test_profile_threads_travel_with_the_bundle(capsys, tmp_path):
    """export --device rpi5 records its 4 threads; edgepose.load uses them unless told otherwise."""
    import edgepose

    assert main(["export", "--device", "rpi5", "--precision", "fp32", "--model", "simplebaseline-mnv2s-edge",
                 "--out", str(tmp_path / "pi")]) == 0
    assert json.loads((tmp_path / "pi" / "manifest.json").read_text())["device_profile"] == {"name": "rpi5",
                                                                                            "threads": 4}
    with edgepose.load(tmp_path / "pi") as rt:
        assert rt.threads == 4
    with edgepose.load(tmp_path / "pi", threads=1) as rt:
        assert rt.threads == 1


def test_device_auto_in_a_jetson_container_names_the_jetson_profiles(monkeypatch):
    """Docker masks /proc/device-tree: the L4T release is there, the board model is not."""
    import edgepose.devices as devices
    from edgepose.errors import ConfigError

    fp = {"profile": None, "label": "ARM · 6 cores · aarch64", "jetson": {"model": None, "l4t": "36.4.3"}}
    monkeypatch.setattr(devices, "fingerprint", lambda: fp)
    with pytest.raises(ConfigError, match="Jetson \\(L4T 36.4.3\\) whose board model cannot be read.*jetson-orin"):
        devices.profile_for("auto")
