"""What a runtime needs to know about a model: :class:`edgepose.spec.ModelSpec`, importable from here too.

The spec lives beside the bundle (``edgepose/spec.py``): the bundle reader parses it without importing the
runtimes package."""

from __future__ import annotations

from edgepose.spec import DECODE_PLACES, ModelSpec

__all__ = ["DECODE_PLACES", "ModelSpec"]
