"""Model registry: ``@register_model("name")``, ``create(name, **kw)``, ``list_models()``.

Every model built here carries a :class:`ModelMeta` (``model.edgepose_meta``) that says what its outputs
mean, so export, training and runtimes never guess: output kind, input size, normalisation, keypoint
schema and codec parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from edgepose.errors import ConfigError, suggest

_REGISTRY: dict[str, Callable[..., Any]] = {}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelMeta:
    """What a model's input and outputs mean.

    ``input_size`` is (width, height) in pixels; ``mean``/``std`` apply to RGB values scaled to [0, 1];
    ``kind`` is 'heatmap' (top-down, one person per crop) or 'centernet' (bottom-up, whole image).
    ``codec`` holds the codec parameters (see :mod:`edgepose.codecs`). ``box_padding``: top-down crops take
    the person box scaled by this factor (1.25 for the zoo's heatmap models, as they were trained).
    """

    name: str
    kind: str
    input_size: tuple[int, int]
    keypoints: str = "coco"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    codec: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # the create() kwargs that rebuild this model
    box_padding: float = 1.25

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model factory under ``name``; registering a name twice is an error."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ConfigError(f"model {name!r} is already registered (by {_REGISTRY[name].__module__})")
        _REGISTRY[name] = fn
        return fn

    return deco


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a substring."""
    _ensure_loaded()
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or pattern in n]


def get_factory(name: str) -> Callable[..., Any]:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise suggest(name, _REGISTRY, "model")
    return _REGISTRY[name]


def create(name: str, *, weights: str | None = None, **kwargs: Any):
    """Build a registered model; ``weights='default'`` loads the embedded trained weights,
    a path loads a checkpoint (state_dict only, see :mod:`edgepose.models.checkpoint`)."""
    factory = get_factory(name)
    if weights == "default":
        from edgepose.weights import default_checkpoint

        ckpt_path = default_checkpoint(name)
        from edgepose.models.checkpoint import load_checkpoint

        return load_checkpoint(ckpt_path, expect_model=name, overrides=kwargs)
    model = factory(**kwargs)
    if weights is not None:
        from edgepose.models.checkpoint import load_state_dict_file

        load_state_dict_file(model, weights)
    return model


def _ensure_loaded() -> None:
    # Importing the family modules runs their @register_model decorators.
    from edgepose.models import (  # noqa: F401
        centernet,
        cpn,
        higherhrnet,
        hrnet,
        movenet,
        movenet_heatmap,
        openpose,
        simcc,
        simplebaseline,
    )
