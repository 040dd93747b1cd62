"""Device profiles: what to deploy on a given edge device (target, precision, threads, input size) and why.

A profile is a recommendation, not a rule: :func:`apply_profile` fills in what the user left out and refuses
only choices the hardware cannot honour (INT8 on a GPU without INT8, TensorRT without an NVIDIA GPU).
``threads=None`` means every core the process may use (OpenVINO and ONNX Runtime default to their own
count of them; edgepose gives TFLite the count, whose XNNPACK would otherwise run one thread); on a Jetson the
threads only run pre- and post-processing. ``export --device`` records the profile (and its threads) in the
bundle, and ``edgepose.load`` uses those threads unless told otherwise. ``input_size=None`` means "the model's
own input size".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from edgepose.backends import NVIDIA_GPU, backends, native_backend, target_names
from edgepose.errors import ConfigError, suggest
from edgepose.utils.options import check_threads

KNOWN_TARGETS = target_names()
PRECISIONS = ("fp32", "fp16", "int8")
_CPU_TARGETS = tuple(b.target for b in backends() if not b.needs)  # run on any CPU
_JETSON_TARGETS = (*(b.target for b in backends() if b.needs == NVIDIA_GPU), *_CPU_TARGETS)  # the GPU's first


@dataclass(frozen=True)
class DeviceProfile:
    """A deployment recommendation for one kind of device.

    ``input_size`` is (w, h) in pixels or None for the model's own; ``threads`` None = all physical cores
    (the backend's default); ``dla``: the device has NVIDIA Deep Learning Accelerator cores TensorRT can use;
    ``int8_supported``: the recommended target can run INT8 on this hardware; ``targets``: the targets that
    run on the device at all; ``accelerator``: what does the work, named in error messages.
    """

    name: str
    title: str
    target: str
    precision: str
    threads: int | None
    input_size: tuple[int, int] | None
    dla: bool
    notes: str
    int8_supported: bool
    targets: tuple[str, ...] = _CPU_TARGETS
    accelerator: str = "CPU"

    def summary(self) -> str:
        """The first sentence of the notes (for tables)."""
        return self.notes.split(". ")[0].rstrip(".")


PROFILES: dict[str, DeviceProfile] = {}


def _register(profile: DeviceProfile) -> None:
    if profile.name in PROFILES:
        raise ValueError(f"device profile {profile.name!r} is registered twice")
    if profile.target not in profile.targets or profile.precision not in PRECISIONS:
        raise ValueError(f"device profile {profile.name!r}: target/precision outside {profile.targets}/{PRECISIONS}")
    PROFILES[profile.name] = profile


_DLA_NOTE = ("TensorRT can put the model on a DLA core (FP16/INT8 only; layers the DLA cannot run fall back to the "
             "GPU, each switch costing a copy): for one small pose model the GPU alone is usually faster, the DLA pays "
             "off when it frees the GPU for a second model")

for _p in (
    DeviceProfile(
        "jetson-nano", "NVIDIA Jetson Nano", "tensorrt", "fp16", None, (192, 256), False,
        "Maxwell GPU without INT8: FP16 is the fast path (TensorRT INT8 needs compute capability 6.1, the Nano's "
        "GPU is 5.3). Export only: its last JetPack (4.6.x: TensorRT 8.0-8.2, Python 3.6) cannot run edgepose "
        "(Python >= 3.10, TensorRT 10), so build and run the engine from the bundle's model.onnx with "
        "trtexec --fp16 or your own TensorRT code. Keep the input at 192x256 (w x h) or smaller for real time",
        False, _JETSON_TARGETS, "Maxwell GPU (128 CUDA cores)"),
    DeviceProfile(
        "jetson-xavier-nx", "NVIDIA Jetson Xavier NX", "tensorrt", "int8", None, None, True,
        "Volta GPU (384 CUDA cores, INT8 tensor cores) and 2 DLA cores: INT8 is the fast path. " + _DLA_NOTE + ". "
        "Export only: its last JetPack (5.1.x: TensorRT 8.5, Python 3.8) cannot run edgepose (Python >= 3.10, "
        "TensorRT 10), so build the engine from the bundle's Q/DQ model.onnx with trtexec --int8 --fp16",
        True, _JETSON_TARGETS, "Volta GPU (384 CUDA cores, 48 tensor cores) + 2 DLA"),
    DeviceProfile(
        "jetson-agx-xavier", "NVIDIA Jetson AGX Xavier", "tensorrt", "int8", None, None, True,
        "Volta GPU (512 CUDA cores, INT8 tensor cores) and 2 DLA cores: INT8 is the fast path. " + _DLA_NOTE + ". "
        "Export only: its last JetPack (5.1.x: TensorRT 8.5, Python 3.8) cannot run edgepose (Python >= 3.10, "
        "TensorRT 10), so build the engine from the bundle's Q/DQ model.onnx with trtexec --int8 --fp16",
        True, _JETSON_TARGETS, "Volta GPU (512 CUDA cores, 64 tensor cores) + 2 DLA"),
    DeviceProfile(
        "jetson-orin-nano", "NVIDIA Jetson Orin Nano", "tensorrt", "int8", None, None, False,
        "Ampere GPU (512 or 1024 CUDA cores), no DLA: INT8 is the fast path. "
        "JetPack 6.1 and later ship TensorRT 10",
        True, _JETSON_TARGETS, "Ampere GPU (512-1024 CUDA cores)"),
    DeviceProfile(
        "jetson-orin-nx", "NVIDIA Jetson Orin NX", "tensorrt", "int8", None, None, True,
        "Ampere GPU (1024 CUDA cores) and 1 or 2 DLA cores: INT8 is the fast path. " + _DLA_NOTE + " (the 16 GB "
        "module has 2 DLA cores, the 8 GB one 1). JetPack 6.1 and later ship TensorRT 10",
        True, _JETSON_TARGETS, "Ampere GPU (1024 CUDA cores) + DLA"),
    DeviceProfile(
        "jetson-agx-orin", "NVIDIA Jetson AGX Orin", "tensorrt", "int8", None, None, True,
        "Ampere GPU (up to 2048 CUDA cores) and 2 DLA cores: INT8 is the fast path. " + _DLA_NOTE + ". JetPack 6.1 "
        "and later ship TensorRT 10",
        True, _JETSON_TARGETS, "Ampere GPU (up to 2048 CUDA cores) + 2 DLA"),
    DeviceProfile(
        "rpi4", "Raspberry Pi 4 / 400 / CM4", "tflite", "int8", 4, (192, 256), False,
        "Four Cortex-A72 cores: TFLite INT8 on XNNPACK with 4 threads. The A72 has NEON but no dot-product "
        "instructions, so INT8 gains less than on a Pi 5, yet the model is 4x smaller and still faster than fp32. "
        "OpenVINO's ARM CPU plugin (--target openvino) is the alternative: compare both with edgepose bench on the "
        "Pi. Keep the input at 192x256 (w x h) or smaller for real time",
        True, _CPU_TARGETS, "4x Cortex-A72 (NEON)"),
    DeviceProfile(
        "rpi5", "Raspberry Pi 5 / 500 / CM5", "tflite", "int8", 4, None, False,
        "Four Cortex-A76 cores: TFLite INT8 on XNNPACK with 4 threads. The A76's dot-product instructions "
        "(asimddp) make INT8 clearly faster than fp32. OpenVINO's ARM CPU plugin (--target openvino) is the "
        "alternative: compare both with edgepose bench on the Pi",
        True, _CPU_TARGETS, "4x Cortex-A76 (NEON, dot product)"),
    DeviceProfile(
        "x86-amx", "x86 CPU with AMX", "openvino", "int8", None, None, False,
        "AMX-INT8 tile units: OpenVINO INT8 (NNCF) is the fast path (Intel Xeon since Sapphire Rapids). "
        "OpenVINO's own default would run fp32 models in bf16 on AMX; edgepose pins f32 for fp32 and int8 "
        "bundles (parity), and an fp16 bundle runs in bf16 there; threads default to all physical cores",
        True, _CPU_TARGETS, "x86 CPU with AMX"),
    DeviceProfile(
        "x86-vnni", "x86 CPU with VNNI", "openvino", "int8", None, None, False,
        "VNNI dot-product instructions: OpenVINO INT8 (NNCF) is several times faster than fp32. VNNI means "
        "AVX512-VNNI (Xeon since Cascade Lake, AMD Zen 4 and later) or AVX-VNNI (Intel client CPUs since Alder "
        "Lake); threads default to all physical cores",
        True, _CPU_TARGETS, "x86 CPU with VNNI"),
    DeviceProfile(
        "x86", "x86 CPU without VNNI", "openvino", "int8", None, None, False,
        "x86 without VNNI (AVX2 or older, or ISA flags unknown as on macOS / Windows): OpenVINO INT8 (NNCF) still "
        "beats fp32 where AVX2 is there, by less; the gain comes mostly from memory traffic. Threads default to "
        "all physical cores",
        True, _CPU_TARGETS, "x86 CPU"),
    DeviceProfile(
        "arm64", "64-bit ARM CPU", "tflite", "int8", None, None, False,
        "64-bit ARM CPU without a specific profile: TFLite INT8 on XNNPACK on every core the process may use. "
        "OpenVINO's ARM CPU plugin (--target openvino) is the alternative: compare both with edgepose bench",
        True, _CPU_TARGETS, "64-bit ARM CPU"),
):
    _register(_p)


def list_profiles() -> list[str]:
    """Profile names in registry order (Jetsons, Raspberry Pis, x86, generic ARM)."""
    return list(PROFILES)


def get_profile(name: str | DeviceProfile) -> DeviceProfile:
    """The profile called ``name``; ConfigError with close matches for an unknown name."""
    if isinstance(name, DeviceProfile):
        return name
    if name not in PROFILES:
        raise suggest(str(name), PROFILES, "device profile")
    return PROFILES[name]


class Resolved(NamedTuple):
    """What :func:`apply_profile` settled on, and the notes that explain it."""

    target: str
    precision: str
    threads: int | None
    notes: list[str]


def _check_target(p: DeviceProfile, target: str | None) -> None:
    if target is None or target == "all":
        return
    if target not in KNOWN_TARGETS:
        raise suggest(target, (*KNOWN_TARGETS, "all"), "target")
    if target not in p.targets:
        backend = native_backend(target)
        why = f"{backend.title} needs {backend.needs}" if backend.needs else f"it runs {', '.join(p.targets)}"
        raise ConfigError(f"{p.name}: --target {target} cannot run on {p.title} ({why}); use --target {p.target}")


def _check_precision(p: DeviceProfile, target: str, precision: str | None) -> None:
    if precision is None:
        return
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "int8" and not p.int8_supported and target in (p.target, "all"):
        raise ConfigError(f"{p.name}: its {p.accelerator} has no INT8 support; use --precision {p.precision}")


def apply_profile(profile: str | DeviceProfile, *, target: str | None, precision: str | None,
                  threads: int | None) -> Resolved:
    """Fill in the options the user left as None from ``profile`` and check the ones given against it.

    Raises ConfigError when an explicit choice contradicts the hardware (``--precision int8`` on a Jetson Nano,
    ``--target tensorrt`` without an NVIDIA GPU, ``threads < 1``); explicit choices that merely differ from the
    recommendation are kept, with a note. Returns (target, precision, threads, notes); notes start with the
    profile's own.
    """
    p = get_profile(profile)
    _check_target(p, target)
    resolved_target = target or p.target
    _check_precision(p, resolved_target, precision)
    check_threads(threads)
    notes = [f"{p.name} ({p.title}): {p.notes}"]
    if target is None:
        notes.append(f"{p.name}: target {p.target} from the profile")
    elif target != p.target:
        notes.append(f"{p.name}: the profile recommends --target {p.target}; exporting {target} as asked")
    if precision is None:
        precision = p.precision
        notes.append(f"{p.name}: precision {precision} from the profile")
    elif precision != p.precision and resolved_target == p.target:
        notes.append(f"{p.name}: the profile recommends --precision {p.precision}; using {precision} as asked")
    if precision == "fp16" and resolved_target == "tflite":
        notes.append(f"{p.name}: fp16 on a CPU (XNNPACK) only halves the file; int8 is the fast path")
    if threads is not None and p.threads is not None and threads > p.threads:
        notes.append(f"{p.name}: {threads} threads oversubscribe its {p.threads} cores")
    return Resolved(resolved_target, precision, p.threads if threads is None else threads, notes)
