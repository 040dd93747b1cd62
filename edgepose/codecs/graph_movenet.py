"""In-graph MoveNet decoders: torch modules that repeat ``MoveNetCodec.decode`` and
``MoveNetMultiPoseCodec.decode`` (Google's post-processing, steps and constants in
:mod:`edgepose.codecs.movenet`) inside an exported model.

Workstation side (imports torch); the device side never imports this module. Ops follow the rules of
:mod:`edgepose.codecs.graph` (ONNX opset 17, no data-dependent shapes): Sigmoid, ArgMax (first index on ties),
TopK through ``_topk_low_index`` (lower index on ties), GatherElements, MaxPool, ReduceMax, Clip, Floor, Sqrt,
Exp, comparisons, And, Where, arithmetic. The constant tables (centre weight, cell rows / columns) are
buffers, exported as initializers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgepose.codecs.graph import _split_xy, _topk_low_index, unpack_maps
from edgepose.codecs.movenet import (
    KPT_DIST_OFFSET,
    KPT_SCORE_THRESHOLD,
    PEAK_POOL,
    PEAK_TOLERANCE,
    SPREAD,
    MoveNetCodec,
    MoveNetMultiPoseCodec,
)
from edgepose.errors import ConfigError


class _MoveNetDecodeBase(nn.Module):
    """The codec check, output unpacking, cell tables and gathers both MoveNet decoders share."""

    codec_type: type = MoveNetCodec

    def __init__(self, codec: Any) -> None:
        super().__init__()
        if not isinstance(codec, self.codec_type):
            raise ConfigError(f"{type(self).__name__} needs a {self.codec_type.__name__}, got {type(codec).__name__}")
        self.codec = codec
        self.width, self.height = codec.feature_size
        self.k = codec.num_keypoints
        gy, gx = codec.cell_grid()
        self.register_buffer("grid_y", torch.from_numpy(gy).reshape(1, 1, -1), persistent=False)
        self.register_buffer("grid_x", torch.from_numpy(gx).reshape(1, 1, -1), persistent=False)

    def _unpack(self, outputs: tuple[Any, ...]) -> list[torch.Tensor]:
        return unpack_maps(outputs, self.codec.output_names, self.codec.channels, (self.height, self.width),
                           type(self).__name__)

    @staticmethod
    def _gather(maps: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) maps, (N, M) flat cell indices → (N, C, M)."""
        n, c = maps.shape[:2]
        return torch.gather(maps.reshape(n, c, -1), 2, idx.unsqueeze(1).expand(n, c, idx.shape[1]))

    def _offsets(self, offset: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """kpt_offset (N, 2K, H, W), joint cells (N, K, M) → (N, K, 2, M) (dy, dx) of joint k at its cells."""
        n, k, m = joint.shape
        flat = offset.reshape(n, k, 2, -1)
        return torch.gather(flat, 3, joint.unsqueeze(2).expand(n, k, 2, m))


class MoveNetDecode(_MoveNetDecodeBase):
    """4 raw MoveNet SinglePose maps (tuple, list, dict or 4 arguments) → keypoints (N, K, 3) x, y in input
    pixels, score; the steps of ``MoveNetCodec.decode``."""

    codec_type = MoveNetCodec

    def __init__(self, codec: MoveNetCodec) -> None:
        super().__init__(codec)
        self.register_buffer("weight", torch.from_numpy(codec.weight).reshape(1, 1, self.height, self.width),
                             persistent=False)

    def forward(self, *outputs: Any) -> torch.Tensor:
        centre, regress, heatmap, offset = self._unpack(outputs)
        n, k = centre.shape[0], self.k
        idx = torch.argmax((torch.sigmoid(centre) * self.weight).reshape(n, -1), dim=1, keepdim=True)  # (N, 1)
        cx, cy = _split_xy(idx, self.width)
        reg = self._gather(regress, idx).reshape(n, k, 2)
        ry, rx = cy + reg[..., 0], cx + reg[..., 1]  # (N, K)
        dy, dx = self.grid_y - ry.unsqueeze(2), self.grid_x - rx.unsqueeze(2)
        dist = torch.sqrt(dy * dy + dx * dx)  # (N, K, H*W)
        probs = torch.sigmoid(heatmap).reshape(n, k, -1)
        joint = torch.argmax(probs / (dist + KPT_DIST_OFFSET), dim=2, keepdim=True)  # (N, K, 1)
        jx, jy = _split_xy(joint[..., 0], self.width)
        off = self._offsets(offset, joint)[..., 0]  # (N, K, 2)
        score = torch.gather(probs, 2, joint)[..., 0]
        # x = (cell + offset) * float16(1 / Wf) * W: the scale and the size are multiplied in the same order
        x = (jx + off[..., 1]) * float(self.codec.scale[0]) * float(self.codec.input_size[0])
        y = (jy + off[..., 0]) * float(self.codec.scale[1]) * float(self.codec.input_size[1])
        return torch.stack([x, y, score], dim=2)


class MoveNetMultiPoseDecode(_MoveNetDecodeBase):
    """6 raw MoveNet MultiPose maps (tuple, list, dict or 6 arguments) → keypoints (N, P, K, 3), scores (N, P),
    boxes (N, P, 4) xyxy, in input pixels; the steps of ``MoveNetMultiPoseCodec.decode``."""

    codec_type = MoveNetMultiPoseCodec

    def __init__(self, codec: MoveNetMultiPoseCodec) -> None:
        super().__init__(codec)
        self.p, self.stride = codec.max_people, float(codec.stride)
        self.spread = float(np.float32(min(self.width, self.height)) * np.float32(SPREAD))

    def forward(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        centre, box_scale, box_offset, regress, heatmap, offset = self._unpack(outputs)
        n, k, p = centre.shape[0], self.k, self.p
        probs = torch.sigmoid(centre)
        pooled = F.max_pool2d(probs, kernel_size=PEAK_POOL, stride=1, padding=PEAK_POOL // 2)
        peak = torch.abs(probs - pooled) < PEAK_TOLERANCE
        centre_score, idx = _topk_low_index((probs * peak.to(probs.dtype)).reshape(n, -1), p)  # (N, P)
        cx, cy = _split_xy(idx, self.width)
        boxes = self._boxes(self._gather(box_scale, idx), self._gather(box_offset, idx), cy, cx)
        reg = self._gather(regress, idx).reshape(n, k, 2, p)
        ry = cy.unsqueeze(2) + reg[:, :, 0].transpose(1, 2)  # (N, P, K)
        rx = cx.unsqueeze(2) + reg[:, :, 1].transpose(1, 2)
        joint, score = self._refine(torch.sigmoid(heatmap).reshape(n, k, -1), ry, rx, boxes)  # (N, P, K)
        jx, jy = _split_xy(joint, self.width)
        off = self._offsets(offset, joint.transpose(1, 2))  # (N, K, 2, P)
        x = (jx + off[:, :, 1].transpose(1, 2)) * self.stride
        y = (jy + off[:, :, 0].transpose(1, 2)) * self.stride
        above = score > KPT_SCORE_THRESHOLD
        total = (centre_score.unsqueeze(2) * torch.where(above, score, torch.zeros_like(score))).sum(2)
        scores = total / torch.clamp(above.to(score.dtype).sum(2), min=1.0)
        ymin, xmin, ymax, xmax = boxes
        xyxy = torch.stack([xmin, ymin, xmax, ymax], dim=2) * self.stride
        return torch.stack([x, y, score], dim=3), scores, xyxy

    def _boxes(self, scale: torch.Tensor, offset: torch.Tensor, cy: torch.Tensor,
               cx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Box heads at the centres (N, 2, P) each → ymin, xmin, ymax, xmax (N, P) in cells, clipped to the map."""
        half = torch.clamp(scale, min=0.0) * 0.5
        y, x = cy + offset[:, 0], cx + offset[:, 1]
        h, w = float(self.height), float(self.width)
        return (torch.clamp(y - half[:, 0], 0.0, h), torch.clamp(x - half[:, 1], 0.0, w),
                torch.clamp(y + half[:, 0], 0.0, h), torch.clamp(x + half[:, 1], 0.0, w))

    def _refine(self, probs: torch.Tensor, ry: torch.Tensor, rx: torch.Tensor,
                boxes: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint heatmaps (N, K, H*W), regressed joints (N, P, K) → joint cells (N, P, K) and their scores."""
        gy, gx = self.grid_y.unsqueeze(0), self.grid_x.unsqueeze(0)  # (1, 1, 1, H*W)
        dy, dx = gy - ry.unsqueeze(3), gx - rx.unsqueeze(3)
        d2 = dy * dy + dx * dx  # (N, P, K, H*W)
        ymin, xmin, ymax, xmax = (b.unsqueeze(2) for b in boxes)  # (N, P, 1)
        inside = (self.grid_y >= ymin) & (self.grid_y < ymax) & (self.grid_x >= xmin) & (self.grid_x < xmax)
        weighted = probs.unsqueeze(1) * torch.exp(-d2 / self.spread) * inside.unsqueeze(2).to(probs.dtype)
        joint = torch.argmax(weighted, dim=3)  # (N, P, K)
        best = torch.amax(weighted, dim=1)  # (N, K, H*W)
        score = torch.gather(best, 2, joint.transpose(1, 2)).transpose(1, 2)
        return joint, score
