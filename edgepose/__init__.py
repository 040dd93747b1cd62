"""edgepose: take trained PyTorch pose-estimation models to edge devices.

The top-level import is light: no torch, ONNX or backend module is imported until it is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["CalibMethod", "DecodePlace", "ParityOptions", "Precision", "QuantOptions", "__version__", "export", "load",
           "models"]

_EXPORT_OPTIONS = ("CalibMethod", "DecodePlace", "ParityOptions", "Precision", "QuantOptions")


def __getattr__(name: str):
    # Lazy submodules: `edgepose.models` imports torch only when first touched.
    if name in ("models", "codecs", "data", "eval", "train", "keypoints", "errors", "runtimes"):
        import importlib

        return importlib.import_module(f"edgepose.{name}")
    if name in _EXPORT_OPTIONS:  # the options of export(); light: no torch
        from edgepose.export import options

        return getattr(options, name)
    raise AttributeError(f"module 'edgepose' has no attribute {name!r}")


def load(bundle, *, backend: str | None = None, **options):
    """Open a deployment bundle and return a loaded Runtime (backend from the manifest unless given)."""
    from edgepose.runtimes import load as _load

    return _load(bundle, backend=backend, **options)


def export(model, **kwargs):
    """Export an nn.Module to a bundle; see :func:`edgepose.export.api.export`."""
    from edgepose.export.api import export as _export

    return _export(model, **kwargs)
