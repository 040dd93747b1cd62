"""In-graph half of the PAF decode: peak NMS and sub-cell offsets (torch, workstation side).

``PAFDecode`` turns the raw (heatmaps, pafs) into (peaks, offsets, pafs), the same values as
:func:`edgepose.codecs.paf.peak_values` and :func:`edgepose.codecs.paf.dense_offsets`; the grouping (a variable
number of peaks and people) stays on the host, in :meth:`edgepose.codecs.paf.PAFCodec.decode_peaks`.
Ops: MaxPool, Equal, Greater, And, Or, Where, Slice, Concat, Max, Min, Log, Sub, Mul, Div, Clip — all export to
ONNX opset 17, OpenVINO and TFLite, with fixed shapes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.codecs.graph import unpack_maps
from edgepose.codecs.paf import LOG_FLOOR, OUTPUT_NAMES, REL_FLOOR, PAFCodec


def _fit(centre: torch.Tensor, before: torch.Tensor, after: torch.Tensor, has_before: torch.Tensor,
         has_after: torch.Tensor, sigma: float) -> torch.Tensor:
    """The sub-cell offset of :func:`edgepose.codecs.paf.subcell_fit` (``has_*``: constant border masks)."""
    c = torch.clamp(centre, min=LOG_FLOOR)
    floor = c * REL_FLOOR
    lc, lb, la = torch.log(c), torch.log(torch.maximum(before, floor)), torch.log(torch.maximum(after, floor))
    s2 = sigma * sigma
    two = 0.5 * (lb - la) / torch.clamp(lb - 2 * lc + la, max=-0.5 / s2)
    one = torch.where(has_before, s2 * (lc - lb) - 0.5, 0.5 - s2 * (lc - la))
    zero = torch.zeros_like(c)
    off = torch.where(has_before & has_after, two, torch.where(has_before | has_after, one, zero))
    return torch.clamp(off, -0.5, 0.5)


class PAFDecode(nn.Module):
    """Raw (heatmaps (N, K, H, W), pafs (N, 2L, H, W)) — a tuple, list, dict or two arguments — → peaks (N, K, H, W),
    offsets (N, 2K, H, W), pafs."""

    def __init__(self, codec: PAFCodec) -> None:
        super().__init__()
        self.codec = codec
        self.threshold, self.sigma = float(codec.peak_threshold), float(codec.sigma)
        fw, fh = codec.feature_size
        col, row = torch.arange(fw).view(1, 1, 1, fw), torch.arange(fh).view(1, 1, fh, 1)
        for name, mask in (("has_left", col > 0), ("has_right", col < fw - 1), ("has_up", row > 0),
                           ("has_down", row < fh - 1)):
            self.register_buffer(name, mask.expand(1, 1, fh, fw).clone(), persistent=False)

    def forward(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fw, fh = self.codec.feature_size
        hm, pafs = unpack_maps(outputs, OUTPUT_NAMES, self.codec.channels, (fh, fw), "PAFDecode")
        pooled = F.max_pool2d(hm, 3, stride=1, padding=1)
        keep = (hm == pooled) & (hm > self.threshold)
        peaks = torch.where(keep, hm, torch.zeros_like(hm))
        left = torch.cat([hm[..., :, :1], hm[..., :, :-1]], -1)  # at the border: masked by has_left
        right = torch.cat([hm[..., :, 1:], hm[..., :, -1:]], -1)
        up = torch.cat([hm[..., :1, :], hm[..., :-1, :]], -2)
        down = torch.cat([hm[..., 1:, :], hm[..., -1:, :]], -2)
        offsets = torch.cat([_fit(hm, left, right, self.has_left, self.has_right, self.sigma),
                             _fit(hm, up, down, self.has_up, self.has_down, self.sigma)], 1)
        return peaks, offsets, pafs
