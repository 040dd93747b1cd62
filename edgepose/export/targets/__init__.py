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


from edgepose.export.targets import openvino, tensorrt, tflite  # noqa: E402  (no heavy imports at module top)

for _mod in (openvino, tflite, tensorrt):
    register_target(_mod.TARGET)


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise suggest(name, [*TARGETS, "all"], "target")
    return TARGETS[name]


__all__ = ["ExportContext", "TARGETS", "Target", "get_target", "register_target"]
