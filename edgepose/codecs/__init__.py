"""Codecs: encode ground truth into training targets and decode model outputs into keypoints.

Device side: this package (and every module it imports) uses numpy and OpenCV only. The torch modules
that decode inside an exported graph live in ``edgepose.codecs.graph`` (workstation side, imported
explicitly, never from here).

Registry: ``get_codec("heatmap", input_size=(192, 256), ...)`` builds a codec by kind;
``codec_from_dict(codec.to_dict())`` rebuilds one from a bundle manifest.
"""

from __future__ import annotations

from typing import Any

from edgepose.codecs.ae import AECodec
from edgepose.codecs.centernet import CenterNetCodec
from edgepose.codecs.heatmap import HeatmapCodec
from edgepose.codecs.movenet import MoveNetCodec, MoveNetMultiPoseCodec
from edgepose.codecs.paf import PAFCodec
from edgepose.codecs.simcc import SimCCCodec
from edgepose.errors import ConfigError, suggest

__all__ = ["AECodec", "CenterNetCodec", "HeatmapCodec", "MoveNetCodec", "MoveNetMultiPoseCodec", "PAFCodec",
           "SimCCCodec", "available_codecs", "codec_from_dict", "get_codec", "register_codec"]

_CODECS: dict[str, type] = {}


def register_codec(kind: str, cls: type) -> type:
    """Register a codec class (with ``from_dict`` / ``to_dict``) under ``kind``; duplicates are an error."""
    if kind in _CODECS and _CODECS[kind] is not cls:
        raise ConfigError(f"codec kind {kind!r} is already registered to {_CODECS[kind].__name__}")
    _CODECS[kind] = cls
    return cls


register_codec(HeatmapCodec.kind, HeatmapCodec)
register_codec(CenterNetCodec.kind, CenterNetCodec)
register_codec(MoveNetCodec.kind, MoveNetCodec)
register_codec(MoveNetMultiPoseCodec.kind, MoveNetMultiPoseCodec)
register_codec(SimCCCodec.kind, SimCCCodec)
register_codec(PAFCodec.kind, PAFCodec)
register_codec(AECodec.kind, AECodec)


def available_codecs() -> list[str]:
    """Registered codec kinds, sorted."""
    return sorted(_CODECS)


def get_codec(kind: str, **params: Any) -> Any:
    """Build the codec registered as ``kind`` with keyword ``params`` (unknown kind → close-match error)."""
    if kind not in _CODECS:
        raise suggest(str(kind), _CODECS, "codec kind")
    return _CODECS[kind].from_dict(params)


def codec_from_dict(params: dict[str, Any]) -> Any:
    """Rebuild a codec from ``codec.to_dict()`` output (a dict with a "kind" key)."""
    if not isinstance(params, dict) or "kind" not in params:
        raise ConfigError(f"codec dict needs a 'kind' key (one of {available_codecs()}), got {params!r}")
    rest = {k: v for k, v in params.items() if k != "kind"}
    return get_codec(params["kind"], **rest)
