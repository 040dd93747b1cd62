"""In-graph candidate extraction for the associative-embedding codec: torch, workstation side.

``AEDecode`` repeats :meth:`edgepose.codecs.ae.AECodec.candidates` with exportable ops only — bilinear Resize
(half-pixel), MaxPool (the peak NMS), equality, Where, TopK (ties to the lower index, see
:mod:`edgepose.codecs.graph`), GatherElements, Floor, Clip and arithmetic — and ends the graph with ``peaks``
(N, K, M, 3) and ``peak_tags`` (N, K, M, D). The grouping (optimal assignment) has no graph form: it runs on the
host, :meth:`AECodec.group`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.codecs.ae import NEG_FILL, OUTPUT_NAMES, AECodec
from edgepose.codecs.graph import _split_xy, _topk_low_index, unpack_maps
from edgepose.errors import ConfigError, InputError


class AEDecode(nn.Module):
    """3 raw AE outputs (tuple, list, dict or 3 arguments) → ``peaks`` (N, K, M, 3) x, y in input px and heatmap
    value, ``peak_tags`` (N, K, M, D): the same steps as ``AECodec.candidates``."""

    def __init__(self, codec: AECodec) -> None:
        super().__init__()
        if not isinstance(codec, AECodec):
            raise ConfigError(f"AEDecode needs an AECodec, got {type(codec).__name__}")
        self.codec = codec
        (self.wq, self.hq), (self.wh, self.hh) = codec.feature_size, codec.hr_size
        self.k, self.m, self.d = codec.num_keypoints, codec.max_people, codec.tag_dim
        self.half = codec.stride / 2

    def _unpack(self, outputs: tuple[Any, ...]) -> list[torch.Tensor]:
        if len(outputs) == 1 and isinstance(outputs[0], (tuple, list, dict)):
            outputs = outputs[0]
        if isinstance(outputs, dict):
            missing = [n for n in OUTPUT_NAMES if n not in outputs]
            if missing:
                raise InputError(f"AEDecode outputs dict lacks {missing}; expected keys {list(OUTPUT_NAMES)}")
            outputs = tuple(outputs[n] for n in OUTPUT_NAMES)
        if len(outputs) != 3:
            raise InputError(f"AEDecode expects 3 outputs {list(OUTPUT_NAMES)}, got {len(outputs)}")
        ch = self.codec.channels
        low = unpack_maps(tuple(outputs[:2]), OUTPUT_NAMES[:2], ch, (self.hq, self.wq), "AEDecode")
        high = unpack_maps(tuple(outputs[2:]), OUTPUT_NAMES[2:], ch, (self.hh, self.wh), "AEDecode")
        return [*low, *high]

    def _parabola(self, flat: torch.Tensor, idx: torch.Tensor, centre: torch.Tensor, step: int,
                  pos: torch.Tensor, size: int) -> torch.Tensor:
        """Sub-cell offset along one axis (see ``AECodec._parabola``)."""
        inside = (pos > 0) & (pos < size - 1)
        lo = torch.gather(flat, 2, torch.where(inside, idx - step, idx))
        hi = torch.gather(flat, 2, torch.where(inside, idx + step, idx))
        denom = 2 * centre - lo - hi
        ok = inside & (denom > 1e-6)
        off = 0.5 * (hi - lo) / torch.where(ok, denom, torch.ones_like(denom))
        return torch.where(ok, torch.clamp(off, -0.5, 0.5), torch.zeros_like(off))

    def forward(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        hm, tags, hm_hr = self._unpack(outputs)
        n = hm.shape[0]
        agg = (F.interpolate(hm, scale_factor=2.0, mode="bilinear", align_corners=False) + hm_hr) / 2
        r = self.codec.nms_kernel // 2
        pooled = F.max_pool2d(agg, kernel_size=2 * r + 1, stride=1, padding=r)
        flat = agg.reshape(n, self.k, self.hh * self.wh)
        keep = (agg == pooled).reshape(n, self.k, self.hh * self.wh)
        _, idx = _topk_low_index(torch.where(keep, flat, torch.full_like(flat, NEG_FILL)), self.m)
        value = torch.gather(flat, 2, idx)
        score = torch.where(torch.gather(keep, 2, idx), value, torch.zeros_like(value))
        x, y = _split_xy(idx, self.wh)
        dx = self._parabola(flat, idx, value, 1, x, self.wh)
        dy = self._parabola(flat, idx, value, self.wh, y, self.hh)
        px, py = (x + dx + 0.5) * self.half - 0.5, (y + dy + 0.5) * self.half - 0.5
        peaks = torch.stack([px, py, score], dim=3)
        tidx = (torch.floor(y / 2) * self.wq + torch.floor(x / 2)).to(torch.int64)  # (N, K, M)
        tflat = tags.reshape(n, self.k, self.d, self.hq * self.wq)
        if self.d == 1:
            peak_tags = torch.gather(tflat[:, :, 0], 2, tidx).unsqueeze(3)
        else:
            peak_tags = torch.gather(tflat, 3, tidx.unsqueeze(2).expand(n, self.k, self.d, self.m)).transpose(2, 3)
        return peaks, peak_tags
