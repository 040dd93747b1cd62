"""In-graph heatmap decode: a torch module that repeats ``HeatmapCodec.decode`` inside an exported model.

Workstation side (imports torch); the device side never imports this module. Re-exported by
:mod:`edgepose.codecs.graph`, whose docstring lists the op rules all in-graph decoders follow.

Cost model. On a small model the decoder's price is its node count: ONNX Runtime spends ~0.3–1 µs per node
on tensors this small, more than the arithmetic, and ``Log`` is its one slow element-wise op (~1.3 ns per
element, ``Exp`` ~0.1). So the decoder reads only what the step needs, through constant lookup tables indexed
by the argmax cell (a ``Gather`` of a table row replaces the integer arithmetic that would build an index),
and never takes the log of a whole map:

* the first maximum: row maxima → first row holding the maximum → first maximum of that row (two small
  ArgMax instead of one over the whole map; same first-flat-index tie rule as numpy);
* argmax: the four neighbours in one gather, the quarter offset as ``sign`` × a per-cell table;
* DARK / UDP: one gather of the raw (T + 2)² window around the argmax (rows / columns clamped to the map)
  plus the edge cells its padding needs; the log-quadratic padding of
  :func:`edgepose.codecs.heatmap.blurred_log_heatmaps` is applied to the window as ``exp(correction)``,
  with the correction computed from the logs of those edge cells only; the blur of the 3 x 3 ring as one
  MatMul, its log, the derivatives and the products of the Newton step as two more MatMuls.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgepose.codecs.heatmap import _LOG_FLOOR, _MAX_TAYLOR_STEP, HeatmapCodec
from edgepose.errors import ConfigError, InputError

_EDGE = 6  # edge cells a padding reads per axis: l0, l1, l2 at the low end, then at the high end


def _edge_cells(size: int) -> list[int]:
    """The cells the log-quadratic padding extrapolates from: [0, 1, 2, size-1, size-2, size-3], clamped."""
    return [0, min(1, size - 1), min(2, size - 1), size - 1, max(size - 2, 0), max(size - 3, 0)]


def _slope_curv(size: int) -> np.ndarray:
    """(6, 4): logs of the edge cells → [slope, curvature] of the low end, then of the high end.

    The padding at distance d outside an end is ``l0 + t * slope + t^2 * curv`` with t = -d, capped at l0
    (``heatmap._pad_log_quadratic``). Axes shorter than 3 cells are edge-padded: zero slope and curvature.
    """
    m = np.zeros((_EDGE, 4))
    if size >= 3:
        for end in (0, 1):
            m[3 * end:3 * end + 3, 2 * end] = [-1.5, 2.0, -0.5]
            m[3 * end:3 * end + 3, 2 * end + 1] = [0.5, -1.0, 0.5]
    return m


def _padding_basis(size: int, pad: int, span: int) -> np.ndarray:
    """(size, span, 4): for an argmax at cell c, per window cell c - pad + b: [t, t^2] of the low end, then of
    the high end, where t = -(distance outside that end), 0 inside. Only one end can be non-zero per cell."""
    u = np.arange(size)[:, None] - pad + np.arange(span)[None, :]
    low, high = np.minimum(u, 0), np.minimum(size - 1 - u, 0)
    return np.stack([low, low * low, high, high * high], axis=2).astype(np.float64)


def _unit(dx: int, dy: int) -> np.ndarray:
    e = np.zeros(9)
    e[(dy + 1) * 3 + dx + 1] = 1.0
    return e


def _step_matrices(taps: np.ndarray, inv_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blur, derivative and product-combination matrices of the DARK step.

    blur ((T + 2)^2, 9): the window, flattened row-major, @ blur = the separable T-tap blur at the 3 x 3 ring
    around its centre. deriv (9, 13): log ring @ deriv = [hxy, hyy, hxy, hxx, hxx, hxy | gy, gx, gx, gy, hyy,
    hxy | -hxx] (central differences, as ``taylor_offset``); the product of the first two sixes @ combine
    (6, 5) = [num_x, num_y, det, det * max_step (per axis)] with num and the limits in input px (times
    ``inv_scale``), the step being num / det = -H^-1 g.
    """
    t, span = len(taps), len(taps) + 2
    k1 = np.zeros((span, 3))
    for i in range(3):
        k1[i:i + t, i] = taps
    blur = np.einsum("ai,bj->abij", k1, k1).reshape(span * span, 9)
    v = _unit
    gx, gy = 0.5 * (v(1, 0) - v(-1, 0)), 0.5 * (v(0, 1) - v(0, -1))
    hxx, hyy = v(1, 0) - 2 * v(0, 0) + v(-1, 0), v(0, 1) - 2 * v(0, 0) + v(0, -1)
    hxy = 0.25 * (v(1, 1) - v(1, -1) - v(-1, 1) + v(-1, -1))
    deriv = np.stack([hxy, hyy, hxy, hxx, hxx, hxy, gy, gx, gx, gy, hyy, hxy, -hxx], axis=1)
    sx, sy = inv_scale
    m = _MAX_TAYLOR_STEP
    combine = np.array([[sx, 0, 0, 0, 0], [-sx, 0, 0, 0, 0], [0, sy, 0, 0, 0], [0, -sy, 0, 0, 0],
                        [0, 0, 1, m * sx, m * sy], [0, 0, -1, -m * sx, -m * sy]], np.float64)
    return blur, deriv, combine


class HeatmapDecode(nn.Module):
    """heatmaps (N, K, H, W) → keypoints (N, K, 3): x, y in input px, score = raw max; ``HeatmapCodec.decode``.

    ``argmax``: argmax + quarter offset. ``dark`` / ``udp`` (UDP differs only by the coordinate scale): the
    Taylor step of :func:`edgepose.codecs.heatmap.taylor_offset` in float32 on the log-quadratically padded,
    blurred map, with the same validity rules. See the module docstring for how it stays cheap.
    """

    def __init__(self, codec: HeatmapCodec) -> None:
        super().__init__()
        if not isinstance(codec, HeatmapCodec):
            raise ConfigError(f"HeatmapDecode needs a HeatmapCodec, got {type(codec).__name__}")
        self.method = codec.method
        self.width, self.height = w, h = codec.heatmap_size
        xs, ys = np.arange(w), np.arange(h)
        inner_x, inner_y = (xs > 0) & (xs < w - 1), (ys > 0) & (ys < h - 1)
        zx, zy = np.zeros(w), np.zeros(h)
        inv = 1.0 / np.asarray(codec.scale, np.float64) * np.ones(2)
        # per-cell tables, in input px: [x, y, quarter-offset size x, y], summed from a row of each
        self._const("pos_x", np.stack([xs, zx, 0.25 * inner_x, zx], 1) * np.tile(inv, 2))
        self._const("pos_y", np.stack([zy, ys, zy, 0.25 * inner_y], 1) * np.tile(inv, 2))
        self._const("row_index", ys[:, None] * w + xs[None, :], torch.int64)
        if self.method == "argmax":
            self._const("nb_x", np.stack([np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1), xs, xs], 1), torch.int64)
            self._const("nb_y", np.stack([ys, ys, np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1)], 1) * w,
                        torch.int64)
            self._const("nb_diff", np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.float64))
        else:
            self._init_dark(codec.blur_kernel, inv)

    def _const(self, name: str, value: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
        self.register_buffer(name, torch.tensor(np.asarray(value), dtype=dtype), persistent=False)

    def _init_dark(self, kernel: int, inv_scale: np.ndarray) -> None:
        import cv2

        # the taps cv2.GaussianBlur(ksize, sigma=0) uses on float64: OpenCV's fixed tables up to 9 taps, else
        # sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
        taps = cv2.getGaussianKernel(kernel, 0, cv2.CV_64F).reshape(-1)
        w, h = self.width, self.height
        pad = kernel // 2 + 1
        self.span = s = 2 * pad + 1
        rows = np.clip(np.arange(h)[:, None] - pad + np.arange(s), 0, h - 1)  # (H, S) window rows, clamped
        cols = np.clip(np.arange(w)[:, None] - pad + np.arange(s), 0, w - 1)  # (W, S)
        edge_rows, edge_cols = np.tile(_edge_cells(h), (h, 1)), np.tile(_edge_cells(w), (w, 1))
        # the gathered block: the window (S x S) | edge columns of the window rows and of the edge rows
        # ((S + 6) x 6) | edge rows of the window columns (6 x S); flat index = row part[y] + column part[x]
        self._const("block_y", w * np.concatenate([np.repeat(rows, s, 1),
                                                   np.repeat(np.concatenate([rows, edge_rows], 1), _EDGE, 1),
                                                   np.repeat(edge_rows, s, 1)], 1), torch.int64)
        self._const("block_x", np.concatenate([np.tile(cols, (1, s)), np.tile(edge_cols, (1, s + _EDGE)),
                                               np.tile(cols, (1, _EDGE))], 1), torch.int64)
        self.parts = [s * s, (s + _EDGE) * _EDGE, _EDGE * s]
        blur, deriv, combine = _step_matrices(taps, inv_scale)
        self._const("det_floor", 1e-12 * _MAX_TAYLOR_STEP * inv_scale)
        for name, value in (("col_coef", _slope_curv(w)), ("row_coef", _slope_curv(h).T),
                            ("col_basis", _padding_basis(w, pad, s).transpose(0, 2, 1)),
                            ("row_basis", _padding_basis(h, pad, s)), ("blur", blur), ("deriv", deriv),
                            ("combine", combine)):
            self._const(name, value)

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        if heatmaps.dim() != 4:
            raise InputError(f"HeatmapDecode expects heatmaps (N, K, H, W), got shape {tuple(heatmaps.shape)}")
        n, k, h, w = heatmaps.shape
        flat = heatmaps.reshape(n, k, h * w)
        row_max = torch.amax(heatmaps, dim=3)  # (N, K, H)
        score = torch.amax(row_max, dim=2, keepdim=True)
        y = torch.argmax(row_max, dim=2)  # (N, K): the first row holding the maximum ...
        x = torch.argmax(torch.gather(flat, 2, self.row_index[y]), dim=2)  # ... and its first maximum
        base, quarter = torch.split(self.pos_x[x] + self.pos_y[y], 2, dim=2)
        if self.method == "argmax":
            diff = torch.matmul(torch.gather(flat, 2, self.nb_y[y] + self.nb_x[x]), self.nb_diff)
            step = torch.sign(diff) * quarter  # MSRA: ±0.25 px towards the higher neighbour, 0 on the border
        else:
            step = self._taylor_step(flat, x, y, score)
        return torch.cat([base + step, score], dim=2)

    def _padded_window(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, K, S * S) exp of the log-quadratically padded log map around each argmax (columns padded first,
        then rows, as numpy), from the raw window times exp(correction); the correction is 0 inside the map."""
        n, k = flat.shape[:2]
        s = self.span
        block = torch.clamp(torch.gather(flat, 2, self.block_y[y] + self.block_x[x]), min=_LOG_FLOOR)
        window, edges = torch.split(block, [self.parts[0], self.parts[1] + self.parts[2]], dim=2)
        col_edges, row_edges = torch.split(torch.log(edges), self.parts[1:], dim=2)
        col_fit = torch.matmul(col_edges.reshape(n, k, s + _EDGE, _EDGE), self.col_coef)  # (N, K, S + 6, 4)
        col_corr = torch.clamp(torch.matmul(col_fit, self.col_basis[x]), max=0.0)  # the cap at the edge value
        col_corr, edge_row_corr = torch.split(col_corr, [s, _EDGE], dim=2)
        # row padding reads the edge rows after their column padding
        row_fit = torch.matmul(self.row_coef, row_edges.reshape(n, k, _EDGE, s) + edge_row_corr)  # (N, K, 4, S)
        row_corr = torch.clamp(torch.matmul(self.row_basis[y], row_fit), max=0.0)
        return window * torch.exp(col_corr + row_corr).reshape(n, k, s * s)

    def _taylor_step(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                     score: torch.Tensor) -> torch.Tensor:
        """DARK: (N, K, 2) step ``-H^-1 g``, zero where ``heatmap.taylor_offset`` gives zero.

        numpy rescales the blurred map to keep the raw maximum before its log: that adds one constant per map
        to the log, which cancels in the central differences, so it is left out here. (numpy floors the log at
        1e-10 after that rescale, this graph before it; they differ only on cells ~1e-10, where no kept step is.)
        Kept where det > 1e-12, |num| < det * max step on each axis (|step| within it), -hxx > 0 and the
        max > 0; the step comes out in input px (the scale is folded into ``combine``).
        """
        window = self._padded_window(flat, x, y)
        ring = torch.log(torch.clamp(torch.matmul(window, self.blur), min=_LOG_FLOOR))  # (N, K, 9)
        left, right, neg_hxx = torch.split(torch.matmul(ring, self.deriv), [6, 6, 1], dim=2)
        num, det, limit = torch.split(torch.matmul(left * right, self.combine), [2, 1, 2], dim=2)
        need = torch.maximum(torch.abs(num), self.det_floor)
        ok = torch.amin(torch.cat([limit - need, neg_hxx, score], dim=2), dim=2, keepdim=True) > 0
        return torch.where(ok, num / det, 0.0)
