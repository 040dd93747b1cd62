"""What every codec shares: a registry ``kind`` and the dict round trip used by bundle manifests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepose.errors import ConfigError, InputError


class Codec:
    """Subclasses set ``kind`` and implement ``to_dict`` (JSON-serialisable constructor parameters + "kind")."""

    kind = ""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, params: dict[str, Any]):
        """Inverse of ``to_dict`` (the "kind" key, if present, must be this codec's)."""
        params = dict(params)
        given = params.pop("kind", cls.kind)
        if given != cls.kind:
            raise ConfigError(f"codec dict has kind {given!r}, expected {cls.kind!r}")
        try:
            return cls(**params)
        except TypeError as exc:
            raise ConfigError(f"bad {cls.kind} codec parameters {sorted(params)}: {exc}") from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "kind")
        return f"{type(self).__name__}({args})"


def split_named_outputs(outputs: Any, names: Sequence[str], channels: dict[str, int], feature_size: tuple[int, int],
                        kind: str) -> list[np.ndarray]:
    """Validate a multi-head model's raw outputs (tuple / list in ``names`` order, or a dict by name) → float32
    arrays (N, C, Hf, Wf); a single image's (C, Hf, Wf) maps get a batch axis. One-line InputError otherwise."""
    names = list(names)
    if isinstance(outputs, dict):
        missing = [n for n in names if n not in outputs]
        if missing:
            raise InputError(f"{kind} outputs dict lacks {missing}; expected keys {names}")
        outputs = [outputs[n] for n in names]
    if not isinstance(outputs, (tuple, list)) or len(outputs) != len(names):
        got = type(outputs).__name__ + (f" of {len(outputs)}" if isinstance(outputs, (tuple, list)) else "")
        raise InputError(f"{kind} decode expects {len(names)} outputs {names}, got {got}")
    fw, fh = feature_size
    arrays = []
    for name, arr in zip(names, outputs):
        a = np.asarray(arr, dtype=np.float32)
        a = a[None] if a.ndim == 3 else a
        want = (channels[name], fh, fw)
        if a.ndim != 4 or a.shape[1:] != want:
            raise InputError(f"{kind} output {name!r} must be (N, {want[0]}, {fh}, {fw}) or {want}, "
                             f"got shape {np.shape(arr)}")
        arrays.append(a)
    if len({a.shape[0] for a in arrays}) != 1:
        raise InputError(f"{kind} outputs disagree on batch size: {[a.shape[0] for a in arrays]}")
    return arrays
