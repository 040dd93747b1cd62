"""In-graph heatmap decode: a torch module that repeats ``HeatmapCodec.decode`` inside an exported model.

Workstation side (imports torch); the device side never imports this module. Re-exported by
:mod:`edgepose.codecs.graph`, whose docstring lists the op rules all in-graph decoders follow.

Cost model. On a small model the decoder's price is its node count: ONNX Runtime spends ~0.2–0.5 µs per
node on tensors this small (a batched MatMul of 17 small matrices ~2 µs), more than the arithmetic, and
``Log`` is its one slow element-wise op (~1.4 ns per element, ``Exp`` ~0.1). So the decoder reads only
what the step needs, through constant lookup tables indexed by the argmax cell (a ``Gather`` of a table
row replaces the integer arithmetic that would build an index), and takes the log of the S x S window
around the argmax only, never of a whole map:

* the first maximum: row maxima → first row holding the maximum → first maximum of that row (two small
  ArgMax instead of one over the whole map; same first-flat-index tie rule as numpy);
* argmax: the four neighbours in one gather, the quarter offset as ``sign`` × a per-cell table;
* DARK / UDP: the window step of :mod:`edgepose.codecs.dark` (the host decode's own steps and tables): one
  gather of the S x S window around the argmax and its log, the log-quadratic padding as two batched
  MatMuls with per-cell matrices (columns, then rows) capped at 0, exp, the blur of the 3 x 3 ring as one
  MatMul, its log; the Newton step and its validity rules as MatMuls with one output each (a multi-output
  Split costs ~0.5 µs per output, as much as the MatMul that replaces it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgepose.codecs.dark import ANISOTROPY, LOG_FLOOR, MAX_STEP, dark_window, ring_derivatives
from edgepose.codecs.heatmap import PEAK_RADIUS, HeatmapCodec
from edgepose.errors import ConfigError, InputError


def _step_matrices(inv_scale: np.ndarray) -> dict[str, np.ndarray]:
    """The Newton step as MatMuls on the log ring (9,).

    left = ring @ left (9, 9) = [hxy, hyy, hxy, hxx, hxx, hxy, hxx, hyy, -hxx], right = ring @ right (9, 9) =
    [gy, gx, gx, gy, hyy, hxy, hxx, hyy, 0], p = left * right. Then p @ num (9, 2) = det * step in input px,
    p @ det (9, 1) = det, and [p | left] @ check (18, 6) = [lim_x - num_x, lim_x + num_x, lim_y - num_y,
    lim_y + num_y, det - ANISOTROPY * (hxx^2 + hyy^2), -hxx], lim = det * MAX_STEP in input px: all six above
    1e-12 is the host's rule set (det > 1e-12 follows from the fifth).
    """
    gx, gy, hxx, hyy, hxy = ring_derivatives()
    left = np.stack([hxy, hyy, hxy, hxx, hxx, hxy, hxx, hyy, -hxx], axis=1)
    right = np.stack([gy, gx, gx, gy, hyy, hxy, hxx, hyy, 0 * gx], axis=1)
    sx, sy = inv_scale
    num = np.zeros((9, 2))
    num[[0, 1, 2, 3], [0, 0, 1, 1]] = [sx, -sx, sy, -sy]  # sx (hxy gy - hyy gx), sy (hxy gx - hxx gy)
    det = np.zeros((9, 1))
    det[[4, 5], 0] = [1, -1]  # hxx hyy - hxy^2
    check = np.zeros((18, 6))
    check[:9, :4] = det * MAX_STEP * np.array([sx, sx, sy, sy]) + num @ np.array([[-1, 1, 0, 0], [0, 0, -1, 1]])
    check[:9, 4] = det[:, 0]
    check[[6, 7], 4] -= ANISOTROPY
    check[17, 5] = 1.0  # -hxx, the last column of left
    return dict(left=left, right=right, num=num, det=det, check=check)


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
        self.peak_margin = codec.peak_margin
        self.width, self.height = w, h = codec.heatmap_size
        xs, ys = np.arange(w), np.arange(h)
        inner_x, inner_y = (xs > 0) & (xs < w - 1), (ys > 0) & (ys < h - 1)
        zx, zy = np.zeros(w), np.zeros(h)
        inv = 1.0 / np.asarray(codec.scale, np.float64) * np.ones(2)
        # per-cell tables, in input px: [x, y] (+ [quarter-offset size x, y] for argmax), summed from a row of each
        self._const("row_index", ys[:, None] * w + xs[None, :], torch.int64)
        if self.peak_margin:  # per argmax column / row: which cells lie within PEAK_RADIUS of it (1.0) or not
            cell_x, cell_y = np.tile(xs, h), np.repeat(ys, w)
            self._const("near_x", np.abs(cell_x[None, :] - xs[:, None]) <= PEAK_RADIUS)
            self._const("near_y", np.abs(cell_y[None, :] - ys[:, None]) <= PEAK_RADIUS)
        if self.method == "argmax":
            self._const("pos_x", np.stack([xs, zx, 0.25 * inner_x, zx], 1) * np.tile(inv, 2))
            self._const("pos_y", np.stack([zy, ys, zy, 0.25 * inner_y], 1) * np.tile(inv, 2))
            self._const("nb_x", np.stack([np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1), xs, xs], 1), torch.int64)
            self._const("nb_y", np.stack([ys, ys, np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1)], 1) * w,
                        torch.int64)
            self._const("nb_diff", np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.float64))
        else:
            self._const("pos_x", np.stack([xs, zx], 1) * inv)
            self._const("pos_y", np.stack([zy, ys], 1) * inv)
            self._init_dark(codec.blur_kernel, inv)

    def _const(self, name: str, value: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
        self.register_buffer(name, torch.tensor(np.asarray(value), dtype=dtype), persistent=False)

    def _init_dark(self, kernel: int, inv_scale: np.ndarray) -> None:
        tables = dark_window(self.width, self.height, kernel)
        self.span = tables.span
        self._const("index_y", tables.index_y, torch.int64)
        self._const("index_x", tables.index_x, torch.int64)
        for name in ("col_pad", "row_pad", "blur"):
            self._const(name, getattr(tables, name))
        for name, value in _step_matrices(inv_scale).items():
            self._const("step_" + name, value)

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        want = (self.height, self.width)
        # eager calls only: while tracing for export the shape is the model's own (and the check would warn)
        if not torch.jit.is_tracing() and (heatmaps.dim() != 4 or tuple(heatmaps.shape[2:]) != want):
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
        if self.method == "argmax":
            base, quarter = torch.split(self.pos_x[x] + self.pos_y[y], 2, dim=2)
            diff = torch.matmul(torch.gather(flat, 2, self.nb_y[y] + self.nb_x[x]), self.nb_diff)
            step = torch.sign(diff) * quarter  # MSRA: ±0.25 px towards the higher neighbour, 0 on the border
        else:
            base, step = self.pos_x[x] + self.pos_y[y], self._taylor_step(flat, x, y)
        if self.peak_margin:
            score = score * self._distinctness(flat, x, y, score)
        return torch.cat([base + step, score], dim=2)

    def _distinctness(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """``heatmap.peak_distinctness``: min(1, relative gap to the best value outside the peak's window / margin)."""
        near = self.near_x[x] * self.near_y[y]  # (N, K, H*W): table rows, no integer arithmetic (TFLite has no
        second = torch.amax(torch.where(near > 0, float("-inf"), flat), dim=2, keepdim=True)  # int64 Abs)
        gap = (score - second) / score.abs().clamp_min(1e-6)
        return torch.clamp(torch.nan_to_num(gap / self.peak_margin, nan=0.0), 0.0, 1.0)

    def _padded_window(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, K, S * S) the log-quadratically padded map on the window around each argmax: the clamped
        window's log plus the column, then the row correction (0 inside the map), exp."""
        n, k = flat.shape[:2]
        s = self.span
        window = torch.clamp(torch.gather(flat, 2, self.index_y[y] + self.index_x[x]), min=LOG_FLOOR)
        logs = torch.log(window).reshape(n, k, s, s)
        logs = logs + torch.clamp(torch.matmul(logs, self.col_pad[x]), max=0.0)
        logs = logs + torch.clamp(torch.matmul(self.row_pad[y], logs), max=0.0)  # reads the padded edge rows
        return torch.exp(logs).reshape(n, k, s * s)

    def _taylor_step(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """DARK: (N, K, 2) step ``-H^-1 g`` in input px (the scale is folded into the step matrices), zero
        where ``heatmap.taylor_offset`` gives zero: the steps of ``DarkWindow.step`` (float64 there, float32
        here).

        Kept where det > 1e-12, det > ANISOTROPY * (hxx² + hyy²), |step| < MAX_STEP on each axis and -hxx > 0.
        Every check here is > 1e-12 (the step's in det · input px units; the host allows |step| = MAX_STEP and
        uses 0 for the rules other than det). The host's "maximum > 0" needs no node: on a map whose maximum is
        at most the log floor every window cell is at the floor, the padding corrections are ≤ 0, so every
        blurred ring value is ≤ the floor and the ring's clamp makes it constant: Hessian 0, step refused.
        """
        ring = torch.log(torch.clamp(torch.matmul(self._padded_window(flat, x, y), self.blur), min=LOG_FLOOR))
        left = torch.matmul(ring, self.step_left)
        prod = left * torch.matmul(ring, self.step_right)
        checks = torch.matmul(torch.cat([prod, left], dim=2), self.step_check)
        ok = torch.amin(checks, dim=2, keepdim=True) > 1e-12
        return torch.where(ok, torch.matmul(prod, self.step_num) / torch.matmul(prod, self.step_det), 0.0)
