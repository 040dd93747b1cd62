"""In-graph decoders: torch modules that repeat the numpy codec decodes inside an exported model.

Workstation side (imports torch); the device side never imports this module. Only ops that export to
ONNX opset 17 and convert to TFLite are used: ReduceMax / ArgMax, GatherElements, TopK, MaxPool, Where,
Clip, Floor, Sign, ArgMin, arithmetic, and for the DARK / UDP refinement Log, Exp, Min, Gather, Split,
Concat and MatMul with constant matrices.

Ties in top-k resolve to the lower index, like ONNX TopK and TF top_k (and the numpy reference). Eager
``torch.topk`` leaves the CPU tie order unspecified, so in eager mode top-k runs as a stable descending sort
+ slice; while exporting (ONNX tracing, torch.export / dynamo, litert-torch) it is ``torch.topk``, which
becomes TopK / TOPK_V2 (the legacy ONNX exporter cannot export a stable sort).
No data-dependent shapes (no nonzero, no boolean indexing).

Shapes: N images, K keypoints, P person slots, H, W map size. Outputs are in input-tensor pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgepose.codecs.centernet import FAR, NEG_FILL, OUTPUT_NAMES, CenterNetCodec
from edgepose.codecs.heatmap import _LOG_FLOOR, _MAX_TAYLOR_STEP, HeatmapCodec
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


def _edge_pad_matrix(size: int, pad: int) -> tuple[list[int], np.ndarray]:
    """Log-quadratic padding of one axis as a linear map of its 6 edge cells (see ``_pad_log_quadratic``).

    Returns the source cells [0, 1, 2, size-3, size-2, size-1] (clamped) and M (6, 4 * pad): edge @ M gives
    [extrapolation before (t = -pad .. -1) | after (t = -1 .. -pad) | cap before | cap after]; the padding is
    the element-wise min of the two halves. Axes shorter than 3 cells are edge-padded, as in numpy.
    """
    src = [0, min(1, size - 1), min(2, size - 1), max(size - 3, 0), max(size - 2, 0), size - 1]
    m = np.zeros((6, 4 * pad))
    for j in range(pad):
        for rows, col, t in (([0, 1, 2], j, j - pad), ([5, 4, 3], pad + j, -1 - j)):
            # l0 + t * slope + t^2 * curv, slope = (-3 l0 + 4 l1 - l2) / 2, curv = (l0 - 2 l1 + l2) / 2
            m[rows, col] = [1 - 1.5 * t + 0.5 * t * t, 2 * t - t * t, 0.5 * (t * t - t)] if size >= 3 else [1, 0, 0]
            m[rows[0], 2 * pad + col] = 1.0
    return src, m


def _ring_matrices(taps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blur and derivative matrices of the DARK step.

    B ((T + 2)^2, 9): a (T + 2) x (T + 2) window of the padded map (T taps), flattened row-major, @ B = the
    separable blur (no padding) at the 3 x 3 ring of cells it covers, row-major. D (9, 9): ring @ D =
    [gx, gy, hyy, hxx, gy, gx, hxy, hxx, hyy] (central differences, as ``taylor_offset``).
    """
    t, span = len(taps), len(taps) + 2
    k1 = np.zeros((span, 3))
    for i in range(3):
        k1[i:i + t, i] = taps
    blur = np.einsum("ai,bj->abij", k1, k1).reshape(span * span, 9)

    def v(dx: int, dy: int) -> np.ndarray:
        e = np.zeros(9)
        e[(dy + 1) * 3 + dx + 1] = 1.0
        return e

    gx, gy = 0.5 * (v(1, 0) - v(-1, 0)), 0.5 * (v(0, 1) - v(0, -1))
    hxx, hyy = v(1, 0) - 2 * v(0, 0) + v(-1, 0), v(0, 1) - 2 * v(0, 0) + v(0, -1)
    hxy = 0.25 * (v(1, 1) - v(1, -1) - v(-1, 1) + v(-1, -1))
    return blur, np.stack([gx, gy, hyy, hxx, gy, gx, hxy, hxx, hyy], axis=1)


class HeatmapDecode(nn.Module):
    """heatmaps (N, K, H, W) → keypoints (N, K, 3): x, y in input px, score = raw max; ``HeatmapCodec.decode``.

    ``argmax``: argmax + quarter offset. ``dark`` / ``udp`` (UDP differs only by the coordinate scale): the
    Taylor step of :func:`edgepose.codecs.heatmap.taylor_offset` in float32, the same math in few graph nodes:
    log → log-quadratic padding (a small MatMul on the edge cells, Min, Concat) → one Gather of the
    (T + 2)^2 window of the padded log map that the blur of the 3 x 3 ring around the argmax reads → Exp →
    OpenCV's T-tap Gaussian as one MatMul (the blurred map only where the step reads it) → log → gradient and
    Hessian as one MatMul → step ``-H^-1 g`` with the same validity rules.
    """

    def __init__(self, codec: HeatmapCodec) -> None:
        super().__init__()
        if not isinstance(codec, HeatmapCodec):
            raise ConfigError(f"HeatmapDecode needs a HeatmapCodec, got {type(codec).__name__}")
        self.method = codec.method
        self.width, self.height = codec.heatmap_size
        self.register_buffer("scale", torch.tensor(codec.scale, dtype=torch.float32), persistent=False)
        if self.method != "argmax":
            self._init_dark(codec.blur_kernel)

    def _init_dark(self, kernel: int) -> None:
        import cv2

        # the taps cv2.GaussianBlur(ksize, sigma=0) uses on float64: OpenCV's fixed tables up to 9 taps, else
        # sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
        taps = cv2.getGaussianKernel(kernel, 0, cv2.CV_64F).reshape(-1)
        pad = kernel // 2 + 1
        self.padded_width = self.width + 2 * pad
        span = kernel + 2
        col_src, col_m = _edge_pad_matrix(self.width, pad)
        row_src, row_m = _edge_pad_matrix(self.height, pad)
        blur, deriv = _ring_matrices(taps)
        window = [a * self.padded_width + b for a in range(span) for b in range(span)]
        for name, value in (("col_src", col_src), ("row_src", row_src)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.int64), persistent=False)
        for name, value in (("col_pad", col_m), ("row_pad", row_m.T), ("window", window), ("blur", blur),
                            ("deriv", deriv)):
            self.register_buffer(name, torch.tensor(np.asarray(value), dtype=torch.float32), persistent=False)

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        if heatmaps.dim() != 4:
            raise InputError(f"HeatmapDecode expects heatmaps (N, K, H, W), got shape {tuple(heatmaps.shape)}")
        n, k, h, w = heatmaps.shape
        flat = heatmaps.reshape(n, k, h * w)
        score, idx = torch.max(flat, dim=2, keepdim=True)  # ReduceMax + ArgMax (first index on ties)
        x, y = _split_xy(idx, self.width)
        if self.method == "argmax":
            step = self._quarter_offset(flat, idx, x, y)
        else:
            step = self._taylor_offset(heatmaps, x, y, score)
        return torch.cat([(torch.cat([x, y], dim=2) + step) / self.scale, score], dim=2)

    def _quarter_offset(self, flat: torch.Tensor, idx: torch.Tensor, x: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
        """MSRA: (N, K, 2) ±0.25 px towards the higher neighbour on each axis (0 on the border or a tie)."""
        hw = self.width * self.height

        def at(offset: int) -> torch.Tensor:
            return torch.gather(flat, 2, torch.clamp(idx + offset, 0, hw - 1))

        inner_x = (x > 0) & (x < self.width - 1)
        inner_y = (y > 0) & (y < self.height - 1)
        zero = torch.zeros_like(x)
        dx = torch.where(inner_x, 0.25 * torch.sign(at(1) - at(-1)), zero)
        dy = torch.where(inner_y, 0.25 * torch.sign(at(self.width) - at(-self.width)), zero)
        return torch.cat([dx, dy], dim=2)

    def _padded_log(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """(N, K, H, W) → log map padded like ``heatmap.blurred_log_heatmaps`` (columns, then rows)."""
        log_map = torch.log(torch.clamp(heatmaps, min=_LOG_FLOOR))
        ext, cap = torch.matmul(torch.index_select(log_map, 3, self.col_src), self.col_pad).chunk(2, dim=3)
        before, after = torch.minimum(ext, cap).chunk(2, dim=3)
        log_map = torch.cat([before, log_map, after], dim=3)
        ext, cap = torch.matmul(self.row_pad, torch.index_select(log_map, 2, self.row_src)).chunk(2, dim=2)
        before, after = torch.minimum(ext, cap).chunk(2, dim=2)
        return torch.cat([before, log_map, after], dim=2)

    def _taylor_offset(self, heatmaps: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                       score: torch.Tensor) -> torch.Tensor:
        """DARK: (N, K, 2) step ``-H^-1 g``, zero where ``heatmap.taylor_offset`` gives zero.

        numpy rescales the blurred map to keep the raw maximum before its log: that adds one constant per map
        to the log, which cancels in the central differences, so it is left out here. (numpy floors the log at
        1e-10 after that rescale, this graph before it; they differ only on cells ~1e-10, where no kept step is.)
        """
        n, k = heatmaps.shape[:2]
        padded = self._padded_log(heatmaps)
        padded = padded.reshape(n, k, -1)
        corner = y * self.padded_width + x  # the window's top-left cell: exact in float32 (below 2**24)
        window = torch.exp(torch.gather(padded, 2, (corner + self.window).to(torch.int64)))
        ring = torch.log(torch.clamp(torch.matmul(window, self.blur), min=_LOG_FLOOR))  # (N, K, 9)
        g, hdiag, gswap, hxy, hxx, hyy = torch.split(torch.matmul(ring, self.deriv), [2, 2, 2, 1, 1, 1], dim=2)
        det = hxx * hyy - hxy * hxy
        ok = (det > 1e-12) & (hxx < 0) & (score > 0)  # a maximum: negative-definite Hessian
        step = (hxy * gswap - hdiag * g) / torch.where(ok, det, torch.ones_like(det))
        ok = ok & (torch.amax(torch.abs(step), dim=2, keepdim=True) <= _MAX_TAYLOR_STEP)
        return torch.where(ok, step, torch.zeros_like(step))


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
        if len(outputs) == 1 and isinstance(outputs[0], (tuple, list, dict)):
            outputs = outputs[0]
        if isinstance(outputs, dict):
            outputs = tuple(outputs[name] for name in OUTPUT_NAMES)
        if len(outputs) != 6:
            raise InputError(f"CenterNetDecode expects 6 outputs {list(OUTPUT_NAMES)}, got {len(outputs)}")
        maps = [o if o.dim() == 4 else o.unsqueeze(0) for o in outputs]
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return maps  # shapes were checked in eager mode; a traced check would only warn
        for name, m in zip(OUTPUT_NAMES, maps):
            want = (self.codec.channels[name], self.height, self.width)
            if m.dim() != 4 or tuple(m.shape[1:]) != want:
                raise InputError(f"CenterNet output {name!r} must be (N, {want[0]}, {want[1]}, {want[2]}), "
                                 f"got shape {tuple(m.shape)}")
        return maps

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
