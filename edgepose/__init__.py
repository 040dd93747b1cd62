"""edgepose: take trained PyTorch pose-estimation models to edge devices.

The top-level import is light: no torch, ONNX or backend module is imported until it is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "models"]


def __getattr__(name: str):
    # Lazy submodules: `edgepose.models` imports torch only when first touched.
    if name in ("models", "codecs", "data", "eval", "train", "keypoints", "errors", "runtimes"):
        import importlib

        return importlib.import_module(f"edgepose.{name}")
    raise AttributeError(f"module 'edgepose' has no attribute {name!r}")
