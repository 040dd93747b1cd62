"""Export targets by name: ``TARGETS["openvino"].build(ctx)``."""

from __future__ import annotations

import importlib

from edgepose.backends import target_names
from edgepose.errors import suggest
from edgepose.export.targets.base import ExportContext, Target

TARGETS: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    TARGETS[target.name] = target
    return target


# one module per registered backend's target, ``edgepose.export.targets.<target>`` with its ``TARGET`` (no heavy
# imports at module top), in the registry's order
for _name in target_names():
    register_target(importlib.import_module(f"{__name__}.{_name}").TARGET)


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise suggest(name, [*TARGETS, "all"], "target")
    return TARGETS[name]


__all__ = ["ExportContext", "TARGETS", "Target", "get_target", "register_target"]
