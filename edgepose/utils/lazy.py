"""Lazy, checked imports of optional packages (one place that knows which extra provides what)."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from edgepose.backends import extras_by_import, get_backend
from edgepose.errors import BackendUnavailable

# import name → pip extra of edgepose that installs it (the backends' own from the backend registry)
EXTRAS = {
    "torch": "export", "onnx": "export", "onnxscript": "export", "onnxslim": "export",
    "litert_torch": "export", "ai_edge_quantizer": "export", "pycocotools": "eval",
    "nncf": get_backend("openvino").extra,  # OpenVINO's quantizer, installed with it
    "matplotlib": "report", "motmetrics": "eval", "scipy": "video", **extras_by_import(),
}


def is_importable(name: str) -> bool:
    """True when ``name`` can be found without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require(name: str, purpose: str = "") -> ModuleType:
    """Import ``name`` or raise BackendUnavailable naming the edgepose extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        extra = EXTRAS.get(name.split(".")[0], "all")
        why = f" (needed for {purpose})" if purpose else ""
        raise BackendUnavailable(
            f"package {name!r} is not installed{why}: pip install 'edgepose[{extra}]' ({exc})"
        ) from None


def check_installed(name: str, purpose: str) -> None:
    """Raise BackendUnavailable naming the edgepose extra when ``name`` is not installed, without importing it: a
    command checks what it will need before any work."""
    if not is_importable(name):
        raise BackendUnavailable(f"{purpose} needs {name}, which is not installed: pip install "
                                 f"'edgepose[{EXTRAS.get(name, 'all')}]'")
