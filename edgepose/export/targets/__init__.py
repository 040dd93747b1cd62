"""Export targets by name: ``TARGETS["openvino"].build(ctx)``."""

from __future__ import annotations

from edgepose.errors import suggest
from edgepose.export.targets.base import ExportContext, Target
from edgepose.export.targets.onnx import OnnxTarget

TARGETS: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    TARGETS[target.name] = target
    return target


register_target(OnnxTarget())


def _register_optional() -> None:
    from edgepose.export.targets import openvino, tensorrt, tflite

    for mod in (openvino, tensorrt, tflite):
        register_target(mod.TARGET)


try:
    _register_optional()
except ImportError:  # a target module still being written must not break the others
    pass


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise suggest(name, [*TARGETS, "all"], "target")
    return TARGETS[name]


__all__ = ["ExportContext", "TARGETS", "Target", "get_target", "register_target"]
