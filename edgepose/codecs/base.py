"""What every codec shares: a registry ``kind`` and the dict round trip used by bundle manifests."""

from __future__ import annotations

from typing import Any

from edgepose.errors import ConfigError


class Codec:
    """Subclasses set ``kind`` and implement ``to_dict`` (JSON-serialisable constructor parameters + "kind")."""

    kind = ""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, params: dict[str, Any]):
        """Inverse of ``to_dict`` (the "kind" key, if present, must be this codec's)."""
        params = dict(params)
        kind = params.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ConfigError(f"codec dict has kind {kind!r}, expected {cls.kind!r}")
        try:
            return cls(**params)
        except TypeError as exc:
            raise ConfigError(f"bad {cls.kind} codec parameters {sorted(params)}: {exc}") from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "kind")
        return f"{type(self).__name__}({args})"
