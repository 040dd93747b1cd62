"""The backend registry: one :class:`Backend` descriptor per runtime subpackage, the only place backend names
are spelled.

A backend is the runtime that runs bundles (``--backend``, the manifest's ``backend``) paired with the export
target whose bundles are made for it (``--target``, the manifest's ``target``). CLI choices, ``edgepose doctor``,
the device fingerprint, device profiles, the importer and the bench plots derive their lists from here, in
registration order. Adding a backend = a subpackage ``edgepose/runtimes/<name>`` (``is_available()`` and a
``Runtime`` subclass), an export target module ``edgepose/export/targets/<target>.py`` (``TARGET``), and one
``register_backend(Backend(...))`` call at the bottom of this file.

Importing this module imports no backend: the subpackage is imported by :meth:`Backend.load_module`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from edgepose.errors import suggest

NVIDIA_GPU = "an NVIDIA GPU"  # Backend.needs of backends that run on a CUDA GPU (Jetson included)


@dataclass(frozen=True)
class Backend:
    """What edgepose knows about one backend, without importing it.

    ``name``: the backend, also its subpackage ``edgepose.runtimes.<name>``; ``title``: its name in prose;
    ``target``: the export target whose bundles are made for it; ``runtime``: the ``Runtime`` subclass in the
    subpackage; ``extra``: the edgepose pip extra that installs it; ``also_runs``: other targets whose bundles it
    can run (from their files); ``precisions``: the precisions its target exports; ``imports``: import names, any
    one of which makes it installed; ``distributions``: pip distributions reported by ``doctor`` and the device
    fingerprint (the first one's version goes into the manifest); ``import_suffix``: suffix of a foreign model
    file ``edgepose import`` wraps for it (None: not importable); ``needs``: hardware beyond a CPU ('' for none).
    """

    name: str
    title: str
    target: str
    runtime: str
    extra: str
    also_runs: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32",)
    imports: tuple[str, ...] = ()
    distributions: tuple[str, ...] = ()
    import_suffix: str | None = None
    needs: str = ""

    @property
    def module(self) -> str:
        """Dotted path of the runtime subpackage."""
        return f"edgepose.runtimes.{self.name}"

    @property
    def runs(self) -> tuple[str, ...]:
        """Bundle targets this backend runs, its own first."""
        return (self.target, *self.also_runs)

    @property
    def package(self) -> str:
        """The distribution whose version an exported bundle's manifest records."""
        return self.distributions[0] if self.distributions else self.name

    def load_module(self) -> ModuleType:
        """The runtime subpackage (light: the backend's own package is imported only when a runtime loads)."""
        return importlib.import_module(self.module)

    def runtime_class(self) -> type:
        return getattr(self.load_module(), self.runtime)

    def is_available(self) -> bool:
        """True when the backend can run here (its package installed; for TensorRT also a usable GPU)."""
        return bool(self.load_module().is_available())

    def unavailable_reason(self) -> str:
        reason = getattr(self.load_module(), "unavailable_reason", None)
        return reason() if reason else f"pip install 'edgepose[{self.extra}]'"


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Add ``backend``; a second backend with the same name or the same target is an error."""
    if backend.name in _BACKENDS:
        raise ValueError(f"backend {backend.name!r} is registered twice")
    clash = next((b.name for b in _BACKENDS.values() if b.target == backend.target), None)
    if clash:
        raise ValueError(f"backend {backend.name!r}: target {backend.target!r} already belongs to backend {clash!r}")
    _BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """The descriptor of backend ``name``; UnknownNameError with close matches when there is none."""
    if name not in _BACKENDS:
        raise suggest(str(name), _BACKENDS, "backend")
    return _BACKENDS[name]


def backends() -> tuple[Backend, ...]:
    """Every registered backend, in registration order."""
    return tuple(_BACKENDS.values())


def backend_names() -> tuple[str, ...]:
    """Backend names in registration order (``--backend`` choices)."""
    return tuple(_BACKENDS)


def target_names() -> tuple[str, ...]:
    """Export target names in registration order (``--target`` choices, without 'all')."""
    return tuple(b.target for b in _BACKENDS.values())


def native_backend(target: str) -> Backend | None:
    """The backend whose bundles ``target`` makes (None for an unknown target)."""
    return next((b for b in _BACKENDS.values() if b.target == target), None)


def backends_for_target(target: str) -> tuple[Backend, ...]:
    """The backends that run bundles of ``target``, its native backend first."""
    found = [b for b in _BACKENDS.values() if target in b.runs]
    return tuple(sorted(found, key=lambda b: b.target != target))


def extras_by_import() -> dict[str, str]:
    """{import name: edgepose pip extra} for every backend's packages."""
    return {module: b.extra for b in _BACKENDS.values() for module in b.imports}


register_backend(Backend("onnxruntime", "ONNX Runtime", target="onnx", runtime="OnnxRuntime", extra="onnxruntime",
                         also_runs=("tensorrt",), precisions=("fp32", "int8"), imports=("onnxruntime",),
                         distributions=("onnxruntime",), import_suffix=".onnx"))
register_backend(Backend("openvino", "OpenVINO", target="openvino", runtime="OpenVINORuntime", extra="openvino",
                         also_runs=("onnx",), precisions=("fp32", "fp16", "int8"), imports=("openvino",),
                         distributions=("openvino", "nncf"), import_suffix=".xml"))
register_backend(Backend("tflite", "TFLite", target="tflite", runtime="TFLiteRuntime", extra="tflite",
                         precisions=("fp32", "fp16", "int8"), imports=("ai_edge_litert", "tflite_runtime"),
                         distributions=("ai-edge-litert", "tflite-runtime"), import_suffix=".tflite"))
register_backend(Backend("tensorrt", "TensorRT", target="tensorrt", runtime="TensorRTRuntime", extra="tensorrt",
                         also_runs=("onnx",), precisions=("fp32", "fp16", "int8"), imports=("tensorrt",),
                         distributions=("tensorrt",), needs=NVIDIA_GPU))
