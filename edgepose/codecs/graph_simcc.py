"""In-graph SimCC decoder (torch, workstation side): ``SimCCCodec.decode`` as exportable ops.

ReduceMax + ArgMax per axis, then float lookup tables for the bin → pixel map (a Gather instead of an integer
cast, which LiteRT's converter handles everywhere), and a Clip for the score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from edgepose.codecs.simcc import OUTPUT_NAMES, SimCCCodec
from edgepose.errors import ConfigError, InputError


class SimCCDecode(nn.Module):
    """(simcc_x (N, K, Wx), simcc_y (N, K, Wy)) → keypoints (N, K, 3): x, y in input px, min peak in [0, 1]."""

    def __init__(self, codec: SimCCCodec) -> None:
        super().__init__()
        if not isinstance(codec, SimCCCodec):
            raise ConfigError(f"SimCCDecode needs a SimCCCodec, got {type(codec).__name__}")
        self.bins = codec.bins
        for name, n in zip(("pos_x", "pos_y"), self.bins):
            table = torch.tensor(np.arange(n) / codec.split_ratio, dtype=torch.float32)
            self.register_buffer(name, table, persistent=False)

    def _unpack(self, outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(outputs, dict):
            outputs = tuple(outputs[n] for n in OUTPUT_NAMES)
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            raise InputError(f"SimCCDecode expects 2 outputs {list(OUTPUT_NAMES)}, got {type(outputs).__name__}")
        sx, sy = (o.float() for o in outputs)
        if not torch.jit.is_tracing() and (sx.shape[-1], sy.shape[-1]) != self.bins:
            raise InputError(f"SimCCDecode expects vectors of {self.bins[0]} and {self.bins[1]} bins, got shapes "
                             f"{tuple(sx.shape)} and {tuple(sy.shape)}")
        return sx, sy

    def forward(self, outputs: Any) -> torch.Tensor:
        sx, sy = self._unpack(outputs)
        mx, ix = torch.amax(sx, dim=2, keepdim=True), torch.argmax(sx, dim=2)
        my, iy = torch.amax(sy, dim=2, keepdim=True), torch.argmax(sy, dim=2)
        x, y = self.pos_x[ix].unsqueeze(2), self.pos_y[iy].unsqueeze(2)
        return torch.cat([x, y, torch.clamp(torch.minimum(mx, my), 0.0, 1.0)], dim=2)
