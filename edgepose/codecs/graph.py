"""In-graph decoders: torch modules that repeat the numpy codec decodes inside an exported model.

Workstation side (imports torch); the device side never imports this module. Only ops that export to
ONNX opset 17 and convert to TFLite are used: ReduceMax / ReduceMin / ArgMax / ArgMin, GatherElements,
Gather of constant tables, TopK, MaxPool, Where, Clip, Floor, Sign, Abs, Max, Split, Concat, comparisons,
arithmetic (Add, Sub, Mul, Div), and for the DARK / UDP refinement Log, Exp and MatMul (batched for the
border padding).
``HeatmapDecode`` lives in :mod:`edgepose.codecs.graph_heatmap`.

Ties in top-k resolve to the lower index, like ONNX TopK and TF top_k (and the numpy reference). Eager
``torch.topk`` leaves the CPU tie order unspecified, so in eager mode top-k runs as a stable descending sort
+ slice; while exporting (ONNX tracing, torch.export / dynamo, litert-torch) it is ``torch.topk``, which
becomes TopK / TOPK_V2 (the legacy ONNX exporter cannot export a stable sort).
No data-dependent shapes (no nonzero, no boolean indexing).

Shapes: N images, K keypoints, P person slots, H, W map size. Outputs are in input-tensor pixels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.codecs.centernet import FAR, NEG_FILL, OUTPUT_NAMES, CenterNetCodec
from edgepose.codecs.graph_heatmap import HeatmapDecode  # noqa: F401  (re-exported)
from edgepose.errors import ConfigError, InputError


def _topk_low_index(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k along the last dim, ties to the lower index (see the module docstring)."""
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return torch.topk(x, k, dim=-1, largest=True, sorted=True)
    values, idx = torch.sort(x, dim=-1, descending=True, stable=True)
    return values[..., :k], idx[..., :k]


def _split_xy(idx: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat int indices → float (x, y) cells, via Floor on float (exact below 2**24 cells)."""
    f = idx.to(torch.float32)
    y = torch.floor(f / width)
    return f - y * width, y


def unpack_maps(outputs: tuple[Any, ...], names, channels: dict[str, int], size: tuple[int, int],
                owner: str) -> list[torch.Tensor]:
    """A decoder's arguments — the raw maps as arguments, or one tuple / list / dict (by name) of them — →
    (N, C, H, W) tensors in ``names`` order; ``size`` is (H, W). Checked in eager mode (one-line InputError
    naming the shapes); while tracing the shapes were already checked and a traced check would only warn."""
    names = list(names)
    if len(outputs) == 1 and isinstance(outputs[0], (tuple, list, dict)):
        outputs = outputs[0]
    if isinstance(outputs, dict):
        missing = [n for n in names if n not in outputs]
        if missing:
            raise InputError(f"{owner} outputs dict lacks {missing}; expected keys {names}")
        outputs = tuple(outputs[n] for n in names)
    if len(outputs) != len(names):
        raise InputError(f"{owner} expects {len(names)} outputs {names}, got {len(outputs)}")
    maps = [o if o.dim() == 4 else o.unsqueeze(0) for o in outputs]
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return maps
    for name, m in zip(names, maps):
        want = (channels[name], *size)
        if m.dim() != 4 or tuple(m.shape[1:]) != want:
            raise InputError(f"{owner}: output {name!r} must be (N, {want[0]}, {want[1]}, {want[2]}), "
                             f"got shape {tuple(m.shape)}")
    if len({m.shape[0] for m in maps}) != 1:
        raise InputError(f"{owner}: outputs disagree on batch size: {[m.shape[0] for m in maps]}")
    return maps


class CenterNetDecode(nn.Module):
    """6 raw CenterNet outputs (tuple, list, dict or 6 arguments) → keypoints (N, P, K, 3), scores (N, P),
    boxes (N, P, 4) xyxy, in input pixels; the same steps as ``CenterNetCodec.decode``."""

    def __init__(self, codec: CenterNetCodec) -> None:
        super().__init__()
        if not isinstance(codec, CenterNetCodec):
            raise ConfigError(f"CenterNetDecode needs a CenterNetCodec, got {type(codec).__name__}")
        self.codec = codec
        self.width, self.height = codec.feature_size
        self.k, self.p, self.stride = codec.num_keypoints, codec.max_people, float(codec.stride)

    def _unpack(self, outputs: tuple[Any, ...]) -> list[torch.Tensor]:
        return unpack_maps(outputs, OUTPUT_NAMES, self.codec.channels, (self.height, self.width), "CenterNetDecode")

    def _peaks(self, logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) logits → flat indices (N, C, k) of the top 3x3 peaks and their scores (0 if not a peak)."""
        n, c = logits.shape[:2]
        pooled = F.max_pool2d(logits, kernel_size=3, stride=1, padding=1)
        flat = logits.reshape(n, c, self.height * self.width)
        keep = (logits == pooled).reshape(n, c, self.height * self.width)
        rank = torch.where(keep, flat, torch.full_like(flat, NEG_FILL))
        _, idx = _topk_low_index(rank, k)
        score = torch.sigmoid(torch.gather(flat, 2, idx))
        return idx, torch.where(torch.gather(keep, 2, idx), score, torch.zeros_like(score))

    @staticmethod
    def _gather(maps: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W), (N, M) → (N, C, M)."""
        n, c = maps.shape[:2]
        flat = maps.reshape(n, c, -1)
        return torch.gather(flat, 2, idx.unsqueeze(1).expand(n, c, idx.shape[1]))

    def forward(self, *outputs: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ch, co, bs, ko, kh, ks = self._unpack(outputs)
        n, k, p = ch.shape[0], self.k, self.p
        idx, scores = self._peaks(ch, p)
        idx, scores = idx[:, 0], scores[:, 0]  # (N, P)
        cx, cy = _split_xy(idx, self.width)
        off, size = self._gather(co, idx), self._gather(bs, idx)  # (N, 2, P)
        centre_x, centre_y = cx + off[:, 0], cy + off[:, 1]
        boxes = torch.stack([centre_x - size[:, 0] / 2, centre_y - size[:, 1] / 2,
                             centre_x + size[:, 0] / 2, centre_y + size[:, 1] / 2], dim=2)  # (N, P, 4)
        kof = self._gather(ko, idx).reshape(n, k, 2, p)
        reg_x = cx.unsqueeze(2) + kof[:, :, 0].transpose(1, 2)  # (N, P, K)
        reg_y = cy.unsqueeze(2) + kof[:, :, 1].transpose(1, 2)
        cell = (torch.clamp(torch.floor(reg_y), 0, self.height - 1) * self.width
                + torch.clamp(torch.floor(reg_x), 0, self.width - 1)).to(torch.int64)
        kflat = kh.reshape(n, k, self.height * self.width)
        joint_score = torch.sigmoid(torch.gather(kflat, 2, cell.transpose(1, 2))).transpose(1, 2)
        if self.codec.snap:
            reg_x, reg_y, joint_score = self._snap(kh, ks, reg_x, reg_y, joint_score, boxes)
        keypoints = torch.stack([reg_x * self.stride, reg_y * self.stride, joint_score], dim=3)
        return keypoints, scores, boxes * self.stride

    def _snap(self, kh: torch.Tensor, ks: torch.Tensor, reg_x: torch.Tensor, reg_y: torch.Tensor,
              reg_score: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Joints (N, P, K) → snapped to the nearest allowed joint peak (see ``CenterNetCodec._snap``)."""
        n, k, p = kh.shape[0], self.k, self.p
        pidx, pscore = self._peaks(kh, p)  # (N, K, Pk)
        sub = self._gather(ks, pidx.reshape(n, k * p)).reshape(n, 2, k, p)
        gx, gy = _split_xy(pidx, self.width)
        px, py = (gx + sub[:, 0]).unsqueeze(1), (gy + sub[:, 1]).unsqueeze(1)  # (N, 1, K, Pk)
        bw, bh = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]  # (N, P)
        mx, my = bw * self.codec.snap_box_margin, bh * self.codec.snap_box_margin
        lim = torch.clamp(torch.maximum(bw, bh) * self.codec.snap_max_dist, min=1.0)

        def e(v: torch.Tensor) -> torch.Tensor:
            return v.unsqueeze(2).unsqueeze(3)  # (N, P) → (N, P, 1, 1)

        inside = ((px >= e(boxes[..., 0] - mx)) & (px <= e(boxes[..., 2] + mx))
                  & (py >= e(boxes[..., 1] - my)) & (py <= e(boxes[..., 3] + my)))
        ddx, ddy = px - reg_x.unsqueeze(3), py - reg_y.unsqueeze(3)
        d2 = ddx * ddx + ddy * ddy  # (N, P, K, Pk)
        ok = inside & (d2 < e(lim * lim)) & (pscore > self.codec.snap_threshold).unsqueeze(1)
        best = torch.argmin(torch.where(ok, d2, torch.full_like(d2, FAR)), dim=3, keepdim=True)
        hit = torch.gather(ok, 3, best).squeeze(3)
        shape = ok.shape

        def pick(v: torch.Tensor) -> torch.Tensor:
            return torch.gather(v.expand(shape), 3, best).squeeze(3)

        snap_x, snap_y, snap_s = pick(px), pick(py), pick(pscore.unsqueeze(1))
        return (torch.where(hit, snap_x, reg_x), torch.where(hit, snap_y, reg_y),
                torch.where(hit, snap_s, reg_score))


class DecodedModel(nn.Module):
    """``forward(x) = decoder(model(x))``: a model with its decode head, ready for export.

    ``model`` returns one heatmap tensor (heatmap models) or a tuple / dict of 6 tensors (CenterNet).
    """

    def __init__(self, model: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> Any:
        return self.decoder(self.model(x))
