"""The result type every runtime returns: :class:`edgepose.poses.Poses`, importable from here too."""

from __future__ import annotations

from edgepose.poses import Poses

__all__ = ["Poses"]
