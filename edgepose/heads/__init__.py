"""Heads: one registered module per output kind (``heatmap``, ``centernet``, ``regression``, ...).

``get_head(spec.kind)`` gives the :class:`Head` that runtime, export, calibration, training, eval, bench and demo
dispatch through; nothing outside this package compares kind strings. A new family's head is one module here
plus its registration line below.
"""

from __future__ import annotations

from edgepose.heads import ae, centernet, heatmap, paf, regression, simcc  # noqa: E402,F401  (registration)
from edgepose.heads.base import (
    BottomUpHead,
    Head,
    byo_kinds,
    check_trainable,
    get_head,
    head_names,
    import_kinds,
    register_head,
    trainable_kinds,
)

__all__ = ["BottomUpHead", "Head", "byo_kinds", "check_trainable", "get_head", "head_names", "import_kinds",
           "register_head", "trainable_kinds"]
