"""What a model costs: parameters and multiply-accumulates (MACs) of one forward pass at a given input.

MACs are counted for convolutions (grouped and depthwise included), transposed convolutions and linear layers,
from the shapes each one sees in one traced forward pass: they are what INT8 kernels speed up, and what a CPU's
peak throughput bounds (``benchmarks/roofline.py``). Normalisation, activations, resizing and element-wise
additions are left out (one operation per value, not a dot product per value, and folded or fused by the runtimes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgepose.errors import ConfigError


@dataclass(frozen=True)
class ModelCost:
    """``params``: parameter count; ``macs``: multiply-accumulates of one forward pass at ``input_size``
    ((width, height), batch 1); ``by_kind``: the MACs split into 'conv', 'depthwise', 'deconv', 'linear'."""

    params: int
    macs: int
    input_size: tuple[int, int]
    by_kind: dict[str, int]

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def _layer_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> tuple[str, int]:
    if isinstance(module, nn.ConvTranspose2d):  # every input value scatters into k*k*(out/groups) outputs
        k = module.kernel_size[0] * module.kernel_size[1]
        return "deconv", inp.numel() // inp.shape[0] * k * module.out_channels // module.groups
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return ("depthwise" if depthwise else "conv"), out.numel() // out.shape[0] * k
    return "linear", out.numel() // out.shape[0] * module.in_features


def model_cost(model: nn.Module, input_size: tuple[int, int] | None = None, channels: int = 3) -> ModelCost:
    """Count ``model``'s parameters and the MACs of one batch-1 forward pass.

    ``input_size`` is (width, height); by default the model's own (``model.edgepose_meta.input_size``). The model
    runs once in eval mode under ``torch.no_grad`` on a zero tensor; its training mode is restored afterwards.
    """
    if input_size is None:
        meta = getattr(model, "edgepose_meta", None)
        if meta is None:
            raise ConfigError(f"{type(model).__name__} has no edgepose_meta; pass input_size=(width, height)")
        input_size = tuple(meta.input_size)
    w, h = (int(v) for v in input_size)
    if w <= 0 or h <= 0:
        raise ConfigError(f"input_size must be two positive ints (width, height); got {input_size!r}")
    by_kind = {"conv": 0, "depthwise": 0, "deconv": 0, "linear": 0}

    def hook(module, inputs, output):
        kind, macs = _layer_macs(module, inputs[0], output)
        by_kind[kind] += macs

    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layers)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, h, w))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return ModelCost(params=params, macs=sum(by_kind.values()), input_size=(w, h), by_kind=by_kind)
