"""``edgepose models`` and ``edgepose doctor``."""

from __future__ import annotations

import importlib.metadata
import platform

from edgepose.cli import command

PACKAGES = [("torch", "export"), ("onnx", "export"), ("onnxruntime", "onnxruntime"), ("openvino", "openvino"),
            ("nncf", "openvino"), ("litert-torch", "export"), ("ai-edge-litert", "tflite"),
            ("tflite-runtime", "tflite"), ("tensorrt", "tensorrt"), ("pycocotools", "eval"),
            ("opencv-python-headless", "core"), ("numpy", "core"), ("matplotlib", "report")]


@command("models", "list the registered models (and which have embedded default weights)")(lambda p: None)
def run_models(args) -> int:
    from edgepose.models import get_factory, list_models
    from edgepose.weights import DEFAULTS

    for name in list_models():
        doc = (get_factory(name).__doc__ or "").strip().splitlines()[0]
        mark = " [default weights]" if name in DEFAULTS else ""
        print(f"{name:28s} {doc}{mark}")
    return 0


@command("doctor", "show installed backends with versions and what each target needs")(lambda p: None)
def run_doctor(args) -> int:
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.system()})")
    for pkg, extra in PACKAGES:
        try:
            version = importlib.metadata.version(pkg)
            state = f"{version}"
        except importlib.metadata.PackageNotFoundError:
            state = _missing_hint(pkg, extra)
        print(f"  {pkg:24s} {state}")
    _print_device()
    return 0


def _missing_hint(pkg: str, extra: str) -> str:
    if extra == "core":
        return "MISSING"
    if pkg == "tflite-runtime":  # the fallback interpreter for devices where ai-edge-litert has no wheel
        try:
            importlib.metadata.version("ai-edge-litert")
            return "not installed (not needed: ai-edge-litert runs TFLite)"
        except importlib.metadata.PackageNotFoundError:
            pass
    if pkg == "tensorrt":
        from edgepose.runtimes.tensorrt import TRT_MISSING

        return "not installed" + TRT_MISSING.removeprefix("tensorrt is not installed")
    return f"not installed (pip install 'edgepose[{extra}]')"


def _print_device() -> None:
    from edgepose.devices import fingerprint, get_profile

    fp = fingerprint()
    print(f"device: {fp['label']}")
    print(f"  ISA flags: {' '.join(fp['isa']) or 'none of interest'}")
    if fp["profile"]:
        p = get_profile(fp["profile"])
        print(f"  profile: {p.name} ({p.title}: {p.target} {p.precision}); see `edgepose devices`")
    else:
        print("  profile: none matches this machine; see `edgepose devices`")
