"""Runtimes: one subpackage per backend, each with ``is_available()`` and a ``Runtime`` subclass.

``load(bundle)`` picks the backend from the manifest (or ``backend=...``) and returns a loaded runtime.
Backends are imported only when used, so a device needs just numpy, OpenCV and its one backend.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

from edgepose.errors import BackendUnavailable, ConfigError, suggest

# backend name → (module, runtime class, pip extra, bundle targets it can run)
BACKENDS = {
    "onnxruntime": ("edgepose.runtimes.onnxruntime", "OnnxRuntime", "onnxruntime", ("onnx", "tensorrt")),
    "openvino": ("edgepose.runtimes.openvino", "OpenVINORuntime", "openvino", ("openvino", "onnx")),
    "tflite": ("edgepose.runtimes.tflite", "TFLiteRuntime", "tflite", ("tflite",)),
    "tensorrt": ("edgepose.runtimes.tensorrt", "TensorRTRuntime", "tensorrt", ("tensorrt", "onnx")),
}


def backend_module(name: str):
    if name not in BACKENDS:
        raise suggest(name, BACKENDS, "backend")
    return importlib.import_module(BACKENDS[name][0])


def is_available(name: str) -> bool:
    """True when the backend's package is installed (and, for TensorRT, a GPU is usable)."""
    return bool(backend_module(name).is_available())


def unavailable_reason(name: str) -> str:
    mod = backend_module(name)
    reason = getattr(mod, "unavailable_reason", None)
    return reason() if reason else f"pip install 'edgepose[{BACKENDS[name][2]}]'"


def check_backend_runs(name: str, target: str, where: str = "") -> None:
    """ConfigError unless backend ``name`` exists and runs bundles of ``target`` (``where``: the bundle, for the
    message)."""
    if name not in BACKENDS:
        raise suggest(name, BACKENDS, "backend")
    targets = BACKENDS[name][3]
    if target not in targets:
        raise ConfigError(f"backend {name!r} cannot run {where or 'a'} {target!r} bundle; it runs "
                          f"{', '.join(targets)} bundles")


def load(bundle: str | Path, *, backend: str | None = None, verify: bool = False, check_files: bool = True,
         **options):
    """Open a bundle directory and return a loaded :class:`~edgepose.runtimes.base.Runtime`.

    ``check_files`` compares every file with the sha256 in the manifest. ``verify=True`` also runs the bundle's
    golden samples (:mod:`edgepose.verify`) and raises VerificationFailed when this device does not reproduce
    them within the manifest's tolerances. ``options`` go to the backend (e.g. ``threads=2``; OpenVINO
    ``device="CPU"``, ``inference_precision``).
    """
    from edgepose.bundle import read_bundle

    b = read_bundle(bundle, verify=check_files)
    acc = b.manifest.get("accuracy")
    if isinstance(acc, dict) and acc.get("passed") is False:
        warnings.warn(f"bundle {b.path} failed its accuracy gate (AP drop {acc.get('ap_drop')} > limit "
                      f"{acc.get('max_ap_drop')}) and was written with --allow-accuracy-drop", stacklevel=2)
    name = backend or b.backend
    profile_threads = (b.manifest.get("device_profile") or {}).get("threads")
    if options.get("threads") is None and isinstance(profile_threads, int) and profile_threads > 0:
        options["threads"] = profile_threads  # export --device recorded the device's thread count
    check_backend_runs(name, b.target)
    module, cls_name = BACKENDS[name][:2]
    mod = importlib.import_module(module)
    if not mod.is_available():
        raise BackendUnavailable(f"backend {name!r} is not available here: {unavailable_reason(name)} "
                                 f"(bundle {b.path} needs it)")
    rt = getattr(mod, cls_name).from_bundle(b, **options).load()
    if verify:
        _verify_loaded(rt, b)
    return rt


def _verify_loaded(rt, bundle) -> None:
    from edgepose.errors import VerificationFailed
    from edgepose.verify import remember, verify_runtime

    try:
        report = verify_runtime(rt, bundle)
    except BaseException:
        rt.close()
        raise
    remember(bundle, report)
    if not report.passed:
        rt.close()
        failed = "; ".join(f"{s.name}: {s.summary}" for s in report.stages if not s.passed)
        raise VerificationFailed(f"bundle {bundle.path} does not reproduce its golden samples on this device "
                                 f"({failed})")
