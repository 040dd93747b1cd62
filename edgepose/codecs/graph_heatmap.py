"""In-graph heatmap decode: a torch module that repeats ``HeatmapCodec.decode`` inside an exported model.

Workstation side (imports torch); the device side never imports this module. Re-exported by
:mod:`edgepose.codecs.graph`, whose docstring lists the op rules all in-graph decoders follow.

Cost model. On a small model the decoder's price is its node count: ONNX Runtime spends ~0.3–1 µs per node
on tensors this small, more than the arithmetic, and ``Log`` is its one slow element-wise op (~1 ns per
element, ``Exp`` ~0.1). So the decoder reads only what the step needs, through constant lookup tables indexed
by the argmax cell (a ``Gather`` of a table row replaces the integer arithmetic that would build an index),
and never takes the log of a whole map:

* the first maximum: row maxima → first row holding the maximum → first maximum of that row (two small
  ArgMax instead of one over the whole map; same first-flat-index tie rule as numpy);
* argmax: the four neighbours in one gather, the quarter offset as ``sign`` × a per-cell table;
* DARK / UDP: the window step of :mod:`edgepose.codecs.dark` (the host decode's own steps and tables): one
  gather of the raw (T + 2)² window around the argmax and of the edge cells its log-quadratic padding
  reads, the padding applied as ``exp(correction)`` from the logs of those edge cells only, the blur of
  the 3 x 3 ring as one MatMul, its log, the derivatives and the products of the Newton step as two more.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgepose.codecs.dark import ANISOTROPY, LOG_FLOOR, MAX_STEP, dark_window, ring_derivatives
from edgepose.codecs.heatmap import HeatmapCodec
from edgepose.errors import ConfigError, InputError


def _step_matrices(inv_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derivative and product-combination matrices of the Newton step.

    log ring @ deriv (9, 17) = [hxy, hyy, hxy, hxx, hxx, hxy, hxx, hyy | gy, gx, gx, gy, hyy, hxy, hxx, hyy |
    -hxx]; the product of the first two eights @ combine (8, 6) = [num_x, num_y, det, det * max step (per
    axis), det - ANISOTROPY * (hxx^2 + hyy^2)] with num and the limits in input px (times ``inv_scale``), the
    step being num / det = -H^-1 g.
    """
    gx, gy, hxx, hyy, hxy = ring_derivatives()
    deriv = np.stack([hxy, hyy, hxy, hxx, hxx, hxy, hxx, hyy, gy, gx, gx, gy, hyy, hxy, hxx, hyy, -hxx], axis=1)
    sx, sy = inv_scale
    m, a = MAX_STEP, ANISOTROPY
    combine = np.array([[sx, 0, 0, 0, 0, 0], [-sx, 0, 0, 0, 0, 0], [0, sy, 0, 0, 0, 0], [0, -sy, 0, 0, 0, 0],
                        [0, 0, 1, m * sx, m * sy, 1], [0, 0, -1, -m * sx, -m * sy, -1], [0, 0, 0, 0, 0, -a],
                        [0, 0, 0, 0, 0, -a]], np.float64)
    return deriv, combine


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
        tables = dark_window(self.width, self.height, kernel)
        self.span = tables.span
        self.parts = tables.parts
        self.edge_cols, self.edge_rows = tables.edge_cols, tables.edge_rows
        self._const("block_y", tables.block_y, torch.int64)
        self._const("block_x", tables.block_x, torch.int64)
        deriv, combine = _step_matrices(inv_scale)
        for name in ("col_coef", "row_coef", "col_basis", "row_basis", "blur"):
            self._const(name, getattr(tables, name))
        self._const("deriv", deriv)
        self._const("combine", combine)
        self._const("det_floor", 1e-12 * MAX_STEP * inv_scale)

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        want = (self.height, self.width)
        if heatmaps.dim() != 4 or tuple(heatmaps.shape[2:]) != want:
            raise InputError(f"HeatmapDecode expects heatmaps (N, K, {want[0]}, {want[1]}), got shape "
                             f"{tuple(heatmaps.shape)}")
        if heatmaps.dtype != torch.float32:
            heatmaps = heatmaps.float()  # the tables are float32 (a model run in float64 or float16)
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
        block = torch.clamp(torch.gather(flat, 2, self.block_y[y] + self.block_x[x]), min=LOG_FLOOR)
        window, edges = torch.split(block, [self.parts[0], self.parts[1] + self.parts[2]], dim=2)
        col_edges, row_edges = torch.split(torch.log(edges), self.parts[1:], dim=2)
        ec, er = self.edge_cols, self.edge_rows
        col_fit = torch.matmul(col_edges.reshape(n, k, s + er, ec), self.col_coef)  # (N, K, S + Er, 2 or 4)
        col_corr = torch.clamp(torch.matmul(col_fit, self.col_basis[x]), max=0.0)  # the cap at the edge value
        col_corr, edge_row_corr = torch.split(col_corr, [s, er], dim=2)
        # row padding reads the edge rows after their column padding
        row_fit = torch.matmul(self.row_coef, row_edges.reshape(n, k, er, s) + edge_row_corr)  # (N, K, 2|4, S)
        row_corr = torch.clamp(torch.matmul(self.row_basis[y], row_fit), max=0.0)
        return window * torch.exp(col_corr + row_corr).reshape(n, k, s * s)

    def _taylor_step(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                     score: torch.Tensor) -> torch.Tensor:
        """DARK: (N, K, 2) step ``-H^-1 g`` in input px (the scale is folded into ``combine``), zero where
        ``heatmap.taylor_offset`` gives zero: the steps of ``DarkWindow.step`` (float64 there, float32 here).

        Kept where det > 1e-12, det > ANISOTROPY * (hxx² + hyy²), |num| < det * max step on each axis
        (|step| below it; the host allows it equal), -hxx > 0 and the max > 0 (see ``codecs/dark.py`` for the
        one difference from the whole-map reference, the order of the log floor and the max-keeping rescale).
        """
        window = self._padded_window(flat, x, y)
        ring = torch.log(torch.clamp(torch.matmul(window, self.blur), min=LOG_FLOOR))  # (N, K, 9)
        left, right, neg_hxx = torch.split(torch.matmul(ring, self.deriv), [8, 8, 1], dim=2)
        num, det, limit, clear = torch.split(torch.matmul(left * right, self.combine), [2, 1, 2, 1], dim=2)
        need = torch.maximum(torch.abs(num), self.det_floor)
        ok = torch.amin(torch.cat([limit - need, clear, neg_hxx, score], dim=2), dim=2, keepdim=True) > 0
        return torch.where(ok, num / det, 0.0)
