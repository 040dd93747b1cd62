"""Bring your own model: what a foreign nn.Module returns, read from one dry run, and the adapter that makes
it the standard output every target, gate and decoder expects.

:func:`attach_meta <edgepose.export.api.attach_meta>` runs the model once (``torch.no_grad``, a seeded random
input of the stated ``input_size``) and reads its outputs: a tensor, a tuple, a list or a dict of tensors, in
NCHW or NHWC. A one-map head (``heatmap``) takes the output ``output=`` names (an index, or a dict key); by
default the only output that fits the head — when several fit, the user chooses. The layout is the axis that
holds the keypoint count (axis 1 → NCHW, the last axis → NHWC; NCHW when both do), the stride the ratio of the
input to the map, the same on both axes and one of :data:`STRIDES`. Multi-output heads (``centernet``) take
every output, in order. Whether a map holds logits or already-activated values ([0, 1]) is recorded, not acted
on: the argmax decode is invariant to a monotonic activation, only the scores' scale differs.

:class:`ByoAdapter` selects the output and permutes NHWC → NCHW, so everything downstream sees (N, K, H, W).
Workstation side: imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgepose.errors import ConfigError

STRIDES = (1, 2, 4, 8)


@dataclass(frozen=True)
class ByoOutputs:
    """What the dry run found: the chosen output(s), their layout, the stride and the map size (w, h)."""

    keys: tuple  # output keys taken, in order (index or dict key); (None,) when the model returns one tensor
    layout: str  # "NCHW" | "NHWC"
    stride: int
    feature_size: tuple[int, int]
    activation: str  # "activated" (values in [0, 1]) | "logits"
    shapes: str  # every output the dry run returned, as received

    @property
    def needs_adapter(self) -> bool:
        return self.keys != (None,) or self.layout != "NCHW"

    def to_dict(self) -> dict:
        return {"output": list(self.keys) if len(self.keys) > 1 else self.keys[0], "layout": self.layout,
                "stride": self.stride, "heatmap_size": list(self.feature_size), "activation": self.activation,
                "received": self.shapes}


class ByoAdapter(nn.Module):
    """``model`` with its output(s) selected and NHWC maps permuted to NCHW: one tensor, or a tuple of several."""

    def __init__(self, model: nn.Module, found: ByoOutputs):
        super().__init__()
        self.model = model
        self.keys = found.keys
        self.nhwc = found.layout == "NHWC"

    @property
    def byo_source(self) -> nn.Module:
        """The user's own module (its weights are what the manifest's source hash covers)."""
        return self.model

    def forward(self, x):
        out = self.model(x)
        maps = [out if k is None else out[k] for k in self.keys]
        if self.nhwc:
            maps = [m.permute(0, 3, 1, 2) for m in maps]
        return maps[0] if len(maps) == 1 else tuple(maps)


def probe(model: nn.Module, head, num_keypoints: int, input_size: tuple[int, int], *, output=None,
          schema: str = "") -> ByoOutputs:
    """Run ``model`` once on a (1, 3, h, w) input and read its outputs for ``head`` (see the module docstring);
    one-line ConfigError naming the shapes received and expected when they fit no such head."""
    w, h = input_size
    model.eval()
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            result = model(x)
    except Exception as exc:  # noqa: BLE001 — the user's model: report it in one line
        raise ConfigError(f"dry run of {type(model).__name__} on a (1, 3, {h}, {w}) input (input_size=({w}, {h})) "
                          f"failed: {type(exc).__name__}: {_first_line(exc)}") from None
    outputs = _flatten(result)
    shapes = _describe(result, outputs)
    channels = tuple(head.byo_channels(num_keypoints))
    what = f"{head.name} head for {num_keypoints} {schema + ' ' if schema else ''}keypoints at input {w}x{h}"
    expected = _expected(channels, w, h)
    if len(channels) == 1:
        keys = _pick(outputs, output, shapes, channels[0], input_size, what, expected)
    else:
        if output is not None:
            raise ConfigError(f"output={output!r}: a {head.name} model's {len(channels)} outputs are all taken, in "
                              f"order; expected output=None (output shapes {shapes})")
        keys = tuple(k for k, _ in outputs)
    maps = [dict(outputs)[k] for k in keys]
    fits = {_fit(tuple(m.shape), c, input_size) if torch.is_tensor(m) else None for m, c in zip(maps, channels)}
    if len(maps) != len(channels) or len(fits) != 1 or None in fits:
        raise ConfigError(f"output shapes {shapes} match no {what}; expected {expected}")
    layout, stride = fits.pop()
    lo, hi = min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)
    return ByoOutputs(keys, layout, stride, (w // stride, h // stride),
                      "activated" if 0.0 <= lo and hi <= 1.0 else "logits", shapes)


def _pick(outputs, output, shapes: str, channels: int, size, what: str, expected: str) -> tuple:
    """The key of the one output a one-map head takes: ``output`` (index or key), else the only one that fits."""
    keys = [k for k, _ in outputs]
    if output is None:
        fit = [k for k, v in outputs if torch.is_tensor(v) and _fit(tuple(v.shape), channels, size)]
        if len(fit) > 1:
            raise ConfigError(f"outputs {', '.join(map(repr, fit))} of {shapes} all fit the {what}; pass output= "
                              "(--output) with the index or key of the one to export")
        if not fit:
            raise ConfigError(f"output shapes {shapes} match no {what}; expected {expected}")
        return (fit[0],)
    if keys == [None] and output in (0, "0", -1, "-1"):
        return (None,)
    if output in keys:
        return (output,)
    index = _as_index(output)
    if index is not None and -len(keys) <= index < len(keys):
        return (keys[index],)
    choice = "the model returns one tensor" if keys == [None] else \
        f"expected an index 0..{len(keys) - 1}" + (f" or a key ({', '.join(map(repr, keys))})"
                                                   if isinstance(keys[0], str) else "")
    raise ConfigError(f"output={output!r}: {choice}; output shapes {shapes}")


def _as_index(output):
    if isinstance(output, int) and not isinstance(output, bool):
        return output
    if isinstance(output, str) and output.lstrip("-").isdigit():
        return int(output)
    return None


def _fit(shape: tuple, channels: int, size) -> tuple[str, int] | None:
    """(layout, stride) when ``shape`` is (N, C, H, W) or (N, H, W, C) maps of ``size`` (w, h) at one stride."""
    w, h = size
    if len(shape) != 4:
        return None
    for layout, c, (mh, mw) in (("NCHW", shape[1], shape[2:]), ("NHWC", shape[3], shape[1:3])):
        if c == channels and mh and mw and h % mh == 0 and w % mw == 0 and h // mh == w // mw in STRIDES:
            return layout, h // mh
    return None


def _flatten(result) -> list[tuple]:
    """[(key, value)] of a model's result: (None, tensor), its tuple / list indices, or its dict keys."""
    if torch.is_tensor(result):
        return [(None, result)]
    if isinstance(result, dict):
        return list(result.items())
    if isinstance(result, (tuple, list)):
        return list(enumerate(result))
    return [(None, result)]


def _describe(result, outputs) -> str:
    """``[(1, 17, 64, 48)]`` / ``{'heatmaps': (1, 17, 64, 48)}``: the outputs as received (non-tensors by type)."""
    def one(v):
        return str(tuple(v.shape)) if torch.is_tensor(v) else type(v).__name__

    if isinstance(result, dict):
        return "{" + ", ".join(f"{k!r}: {one(v)}" for k, v in outputs) + "}"
    text = ", ".join(one(v) for _, v in outputs)
    return f"({text},)" if isinstance(result, tuple) and len(outputs) == 1 else \
        f"({text})" if isinstance(result, tuple) else f"[{text}]"


def _expected(channels: tuple, w: int, h: int) -> str:
    strides = "{" + ", ".join(map(str, STRIDES)) + "}"
    if len(channels) == 1:
        k = channels[0]
        return f"(N, {k}, H, W) or (N, H, W, {k}) with {h}/H = {w}/W in {strides}"
    return (f"{len(channels)} outputs (N, C, H, W) with C = {', '.join(map(str, channels))} and {h}/H = {w}/W in "
            f"{strides}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
