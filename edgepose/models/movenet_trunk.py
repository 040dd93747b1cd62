"""MoveNet's pose-trained MobileNetV2 trunk as the starting point of a zoo model's torchvision-named trunk.

MoveNet Lightning's trunk is a MobileNetV2 x1.0 trained on people (COCO + Google's Active set), the only
real-image features this project ships. A zoo model with a MobileNetV2 x1.0 trunk (``features.0`` …
``features.18``: ``simplebaseline-mnv2*``, ``centernet-mnv2``) can start from it instead of from random weights:

- MoveNet's convolutions carry their BatchNorm folded into a bias; the zoo's have a BatchNorm after a bias-free
  convolution, which is set to the identity plus that bias (weight 1, mean 0, variance 1 - eps);
- MoveNet reads RGB scaled to [-1, 1]; the zoo model's own normalisation (mean / std per channel) is folded into
  the stem convolution, so the stem sees the same values it was trained on (exact away from the zero-padded
  border);
- TensorFlow's stride-2 padding (bottom / right only) is not reproduced: the zoo trunk pads every side, so its
  sampling grid is shifted by a pixel per stride-2 layer — fine-tuning absorbs this; the copy is a start, not a
  replica.
"""

from __future__ import annotations

import torch

from edgepose.errors import ConfigError

MOVENET_STD = 0.5
MOVENET_MEAN = 0.5


def _pairs(features_len: int, num_blocks: int) -> list[tuple[str, str]]:
    """(MoveNet conv prefix, zoo conv prefix [BatchNorm follows at index + 1]) for every trunk convolution."""
    pairs = [("backbone.stem.conv", "features.0.0")]
    for i in range(num_blocks):
        z = f"features.{i + 1}.conv"
        if i == 0:  # expansion 1: depthwise, project
            pairs += [("backbone.blocks.0.depthwise.conv", f"{z}.0.0"), ("backbone.blocks.0.project.conv", f"{z}.1")]
        else:
            m = f"backbone.blocks.{i}"
            pairs += [(f"{m}.expand.conv", f"{z}.0.0"), (f"{m}.depthwise.conv", f"{z}.1.0"),
                      (f"{m}.project.conv", f"{z}.2")]
    pairs.append(("backbone.last.conv", f"features.{features_len - 1}.0"))
    return pairs


def _bn_of(zoo_conv: str) -> str:
    """The BatchNorm after a zoo convolution: ``x.0.0`` → ``x.0.1``; a project conv ``...conv.2`` → ``...conv.3``."""
    head, _, last = zoo_conv.rpartition(".")
    return f"{head}.{int(last) + 1}"


def trunk_from_movenet(model, movenet) -> int:
    """Copy ``movenet``'s trunk into ``model.features`` (see the module docstring); returns the tensors written.
    A MoveNet-family student (``movenet-heatmap-edge``) takes every tensor whose name and shape match instead:
    trunk, pyramid and the heads they share. ConfigError when the trunks differ (another width, or no MobileNetV2
    trunk)."""
    from edgepose.models.movenet import MoveNet

    if isinstance(model, MoveNet) and isinstance(movenet, MoveNet):
        return _same_layout(model, movenet)
    features = getattr(model, "features", None)
    if features is None or not hasattr(movenet, "backbone"):
        raise ConfigError(f"{type(model).__name__} has no torchvision-named MobileNetV2 trunk (features.N) or "
                          f"{type(movenet).__name__} is not a MoveNet; expected e.g. simplebaseline-mnv2-edge and "
                          "movenet-lightning")
    src, own = movenet.state_dict(), model.state_dict()
    pairs = _pairs(len(features), len(movenet.backbone.blocks))
    for m, z in pairs:
        a, b = tuple(src[f"{m}.weight"].shape), tuple(own[f"{z}.weight"].shape)
        if a != b:
            raise ConfigError(f"the MoveNet trunk does not fit {model.edgepose_meta.name}: {m} is {a}, the student's "
                              f"is {b}; expected a MobileNetV2 x1.0 trunk (movenet-lightning's width)")
    modules, new = dict(model.named_modules()), {}
    for m, z in pairs:
        w, b = src[f"{m}.weight"].clone(), src[f"{m}.bias"].clone()
        if z == "features.0.0":
            w, b = _fold_normalisation(w, b, model.edgepose_meta)
        bn = _bn_of(z)
        eps = modules[bn].eps
        new.update({f"{z}.weight": w, f"{bn}.weight": torch.ones_like(b), f"{bn}.bias": b,
                    f"{bn}.running_mean": torch.zeros_like(b), f"{bn}.running_var": torch.full_like(b, 1 - eps)})
    model.load_state_dict(new, strict=False)
    return len(new)


def _fold_normalisation(w: torch.Tensor, b: torch.Tensor, meta) -> tuple[torch.Tensor, torch.Tensor]:
    """Stem weights for the student's input ``(x - mean) / std`` that compute what MoveNet's stem computed on
    ``(x - 0.5) / 0.5``: u = v * std / 0.5 + (mean - 0.5) / 0.5 per channel."""
    mean = torch.tensor(meta.mean, dtype=w.dtype).view(1, 3, 1, 1)
    std = torch.tensor(meta.std, dtype=w.dtype).view(1, 3, 1, 1)
    w2 = w * std / MOVENET_STD
    b2 = b + (w * (mean - MOVENET_MEAN) / MOVENET_STD).sum(dim=(1, 2, 3))
    return w2, b2


def _same_layout(model, movenet) -> int:
    """Tensors of equal name and shape; a CenterNet student's heads take their MoveNet counterparts
    (:func:`_centernet_from_movenet`)."""
    src, own = dict(movenet.state_dict()), model.state_dict()
    if "heads.hps.out.weight" in own:
        src.update(_centernet_from_movenet(src))
    take = {k: v for k, v in src.items() if k in own and v.shape == own[k].shape}
    misfit = [k for k in own if k.startswith("backbone.") and k not in take]
    if misfit:
        raise ConfigError(f"the MoveNet trunk does not fit {model.edgepose_meta.name}: {misfit[0]} is "
                          f"{tuple(own[misfit[0]].shape)} there, {tuple(src[misfit[0]].shape)} in the teacher; "
                          f"expected the same trunk width ({getattr(model, 'trunk_source', 'a MoveNet')}'s)")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in take.items()}, strict=False)
    return len(take)


def _yx_to_xy(t: torch.Tensor) -> torch.Tensor:
    """Rows (dy, dx) per joint → (dx, dy): MoveNet's two-channel heads are y first, the zoo's CenterNet x first."""
    return t.reshape(-1, 2, *t.shape[1:]).flip(1).reshape(t.shape)


def _centernet_from_movenet(src: dict) -> dict:
    """The zoo's CenterNet heads (``edgepose.models.centernet.HEAD_NAMES``) from MoveNet's, which predict the same
    things in other layouts (both at stride 4, in feature cells):

    - ``hm`` ← ``centre``, ``hm_hp`` ← ``kpt_heatmap`` (logits, as they are);
    - ``hps`` (joint minus centre cell, x then y per joint) ← ``kpt_regress`` (y then x);
    - ``hp_offset`` (one sub-cell (x, y) shared by all joints) has no counterpart: MoveNet's ``kpt_offset`` is
      valid only in joint k's own channels at joint k's cells, and its rows averaged over the joints moved the
      joints by cells (MultiPose through the zoo decoder: coco-mini AP 5.5 so, 38.0 with the student's own start);
    - MultiPose only: ``wh`` (box width, height) ← ``box_scale`` (height, width), ``reg`` (box centre minus the
      centre cell) ← ``box_offset``. A single-pose teacher has no box heads: they keep their start.
    """
    out = {}

    def head(ours: str, theirs: str, rows=None) -> None:
        if f"heads.{theirs}.out.weight" not in src:
            return
        for k in [k for k in src if k.startswith(f"heads.{theirs}.")]:
            v = src[k]
            if rows is not None and k.startswith(f"heads.{theirs}.out."):
                v = rows(v)
            out[f"heads.{ours}.{k[len(f'heads.{theirs}.'):]}"] = v

    head("hm", "centre")
    head("hm_hp", "kpt_heatmap")
    head("hps", "kpt_regress", _yx_to_xy)
    head("wh", "box_scale", _yx_to_xy)
    head("reg", "box_offset", _yx_to_xy)
    return out
