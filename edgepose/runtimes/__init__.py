"""Runtimes: one subpackage per backend, each with ``is_available()`` and a ``Runtime`` subclass.

``load(bundle)`` picks the backend from the manifest (or ``backend=...``) and returns a loaded runtime.
Backends are imported only when used, so a device needs just numpy, OpenCV and its one backend.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from edgepose.backends import Backend, backend_names, backends, get_backend
from edgepose.errors import BackendUnavailable, ConfigError


def backend_module(name: str):
    return get_backend(name).load_module()


def is_available(name: str) -> bool:
    """True when the backend's package is installed (and, for TensorRT, a GPU is usable)."""
    return get_backend(name).is_available()


def unavailable_reason(name: str) -> str:
    return get_backend(name).unavailable_reason()


def check_backend_runs(name: str, target: str, where: str = "") -> Backend:
    """The descriptor of backend ``name``; ConfigError unless it exists and runs bundles of ``target`` (``where``:
    the bundle, for the message)."""
    backend = get_backend(name)
    if target not in backend.runs:
        raise ConfigError(f"backend {name!r} cannot run {where or 'a'} {target!r} bundle; it runs "
                          f"{', '.join(backend.runs)} bundles")
    return backend


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
    runner = check_backend_runs(name, b.target)
    if not runner.is_available():
        raise BackendUnavailable(f"backend {name!r} is not available here: {runner.unavailable_reason()} "
                                 f"(bundle {b.path} needs it)")
    rt = runner.runtime_class().from_bundle(b, **options).load()
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


__all__ = ["Backend", "backend_module", "backend_names", "backends", "check_backend_runs", "get_backend",
           "is_available", "load", "unavailable_reason"]
