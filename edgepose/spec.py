"""``ModelSpec``: what a runtime must know about a model (from a bundle manifest or a ModelMeta)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgepose.errors import ConfigError
from edgepose.heads import get_head, head_names
from edgepose.pipeline.preprocess import InputSpec

DECODE_PLACES = ("host", "graph")


@dataclass
class ModelSpec:
    """kind: the registered head (:mod:`edgepose.heads`): 'heatmap' (top-down), 'centernet' (bottom-up),
    'regression' (keypoints straight out, e.g. MoveNet), ...

    decode: 'host' — the graph outputs raw maps and the numpy codec decodes them; 'graph' — the graph
    already outputs keypoints in input pixels (heatmap: (N, K, 3); centernet: keypoints, scores, boxes).
    """

    kind: str
    input: InputSpec
    keypoints: str = "coco"
    codec: dict = field(default_factory=dict)
    decode: str = "host"
    score_threshold: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in head_names():
            raise ConfigError(f"output kind must be one of {tuple(head_names())}, got {self.kind!r}")
        if self.decode not in DECODE_PLACES:
            raise ConfigError(f"decode must be one of {DECODE_PLACES}, got {self.decode!r}")

    @property
    def head(self):
        """The :class:`~edgepose.heads.Head` registered for this output kind."""
        return get_head(self.kind)

    @property
    def bottom_up(self) -> bool:
        """True when the model finds the people itself in the whole frame (no person boxes)."""
        return self.head.bottom_up

    @classmethod
    def from_meta(cls, meta, decode: str = "host") -> ModelSpec:
        size = tuple(int(v) for v in meta.input_size)
        inp = InputSpec(size=size, mean=tuple(meta.mean), std=tuple(meta.std),
                        padding=float(getattr(meta, "box_padding", 1.25)))
        return cls(kind=meta.kind, input=inp,
                   keypoints=meta.keypoints, codec=dict(meta.codec), decode=decode)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"]["size"] = list(self.input.size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        d = dict(d)
        inp = dict(d.pop("input"))
        inp["size"] = tuple(inp["size"])
        inp["mean"], inp["std"] = tuple(inp["mean"]), tuple(inp["std"])
        return cls(input=InputSpec(**inp), **d)
