"""The DARK / UDP Taylor step computed on a window around each argmax (numpy; device side).

:func:`edgepose.codecs.heatmap.blurred_log_heatmaps` defines the step on whole maps: log-quadratic padding
of the log map (columns, then rows), exp, OpenCV Gaussian blur, log, central differences at the argmax.
The step only reads the blurred log on the 3 x 3 ring around the argmax, and that blur only reads a
(T + 2) x (T + 2) window of the padded map (T = kernel taps), so this module computes the same numbers from
that window alone:

* one gather per map of the window (rows / columns clamped to the map) and of the edge cells its padding
  reads: 3 cells at the nearer end (both ends when the map is narrower than the window) of each window row
  and of the edge rows, and of each window column;
* the padding as a correction of the clamped window's log, ``min(t * slope + t^2 * curv, 0)`` per end,
  with slope and curvature from the logs of those edge cells (0 inside the map, so ``exp(correction)``
  multiplies the raw window); the row padding reads the edge rows after their column padding, as numpy;
* the blur of the ring as one matrix, its log, gradient and Hessian as another.

Lookup tables indexed by the argmax cell replace index arithmetic; the in-graph decoder
(:mod:`edgepose.codecs.graph_heatmap`) uses the same tables, so host and graph decode run the same steps.
The full-map version stays in ``heatmap.py`` as the reference the tests hold this one to.

One deliberate difference from the full-map reference: that one rescales the blurred map to keep the raw
maximum and floors the log at 1e-10 after the rescale; the window has no whole-map maximum, so the floor
applies before it. The rescale adds a constant to each log map, which cancels in the differences; the floor
order matters only where blurred values come near 1e-10, i.e. on maps whose maximum is below ~1e-9
(practically empty), where the two may keep different steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

LOG_FLOOR = 1e-10
MAX_STEP = 1.0  # heatmap px; a larger Newton step means the local model does not fit
# det must also exceed ANISOTROPY * (hxx^2 + hyy^2): a maximum flatter than 1:1000 along one axis (a ridge, a
# map one cell tall) has a Hessian that float32 rounding can give either sign, so no step is kept there
ANISOTROPY = 1e-3


def _axis(size: int, span: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-axis tables for an argmax at each cell c of an axis of ``size`` cells.

    Returns window (size, span): the window cells c - pad .. c + pad, clamped to the axis; cells (size, E):
    the edge cells the padding of the window around c extrapolates from — l0, l1,
    l2 of the low end, then of the high end (E = 6); or, when the axis is at least as long as the window, so
    that the window crosses one end at most, only the end nearer to c (E = 3); coef (E, 2 * E / 3): their
    logs → [slope, curvature] per end; basis (size, span, 2 * E / 3): per window cell c - pad + b, [t, t^2]
    per end, t = -(distance outside that end), 0 inside. The padding at distance d outside an end is
    ``l0 + t * slope + t^2 * curv`` capped at l0 (``heatmap._pad_log_quadratic``); axes shorter than 3 cells
    are edge-padded (zero slope and curvature).
    """
    c = np.arange(size)
    low, high = [0, min(1, size - 1), min(2, size - 1)], [size - 1, max(size - 2, 0), max(size - 3, 0)]
    u = c[:, None] - span // 2 + np.arange(span)[None, :]
    t_low, t_high = np.minimum(u, 0), np.minimum(size - 1 - u, 0)
    fit = np.array([[-1.5, 0.5], [2.0, -1.0], [-0.5, 0.5]]) if size >= 3 else np.zeros((3, 2))
    window = np.clip(u, 0, size - 1)
    if size >= span:
        near_low = (c < (size - 1) / 2)[:, None]
        cells = np.where(near_low, low, high)
        t = np.where(near_low, t_low, t_high)
        return window, cells, fit, np.stack([t, t * t], axis=2).astype(np.float64)
    cells = np.tile(low + high, (size, 1))
    coef = np.zeros((6, 4))
    coef[:3, :2], coef[3:, 2:] = fit, fit
    return window, cells, coef, np.stack([t_low, t_low**2, t_high, t_high**2], axis=2).astype(np.float64)


def _unit(dx: int, dy: int) -> np.ndarray:
    e = np.zeros(9)
    e[(dy + 1) * 3 + dx + 1] = 1.0
    return e


def ring_derivatives() -> tuple[np.ndarray, ...]:
    """gx, gy, hxx, hyy, hxy as (9,) functionals of the 3 x 3 ring (row-major), central differences."""
    v = _unit
    return (0.5 * (v(1, 0) - v(-1, 0)), 0.5 * (v(0, 1) - v(0, -1)), v(1, 0) - 2 * v(0, 0) + v(-1, 0),
            v(0, 1) - 2 * v(0, 0) + v(0, -1), 0.25 * (v(1, 1) - v(1, -1) - v(-1, 1) + v(-1, -1)))


@dataclass(frozen=True)
class DarkWindow:
    """Lookup tables and matrices of the window step for (width, height) maps and a T-tap blur.

    block_y (H, L) + block_x (W, L) at the argmax row / column = flat indices of the gathered block: the
    window (S x S, S = T + 2) | edge columns of the window rows and of the edge rows ((S + Er) x Ec) | edge
    rows of the window columns (Er x S), with Ec, Er edge cells per row / column (see ``_axis``).
    ``blur`` ((S * S), 9): window @ blur = the blur at the ring (row-major).
    """

    width: int
    height: int
    span: int
    block_y: np.ndarray
    block_x: np.ndarray
    edge_cols: int  # Ec
    edge_rows: int  # Er
    col_coef: np.ndarray  # (Ec, 2 or 4)
    row_coef: np.ndarray  # (2 or 4, Er)
    col_basis: np.ndarray  # (W, 2 or 4, S)
    row_basis: np.ndarray  # (H, S, 2 or 4)
    blur: np.ndarray
    deriv: np.ndarray  # (9, 5): log ring @ deriv = gx, gy, hxx, hyy, hxy

    @property
    def parts(self) -> list[int]:
        s, ec, er = self.span, self.edge_cols, self.edge_rows
        return [s * s, (s + er) * ec, er * s]

    def step(self, flat: np.ndarray, x: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
        """(M, H * W) maps, argmax cells x, y (M,) and maxima (M,) → (M, 2) float32 Taylor step in map px,
        zero where the Hessian is not clearly negative definite (det ≤ 1e-12, det ≤ ANISOTROPY * (hxx² + hyy²)
        or hxx ≥ 0), the maximum is not positive or the step is longer than ``MAX_STEP`` on an axis."""
        m, s, ec, er = len(x), self.span, self.edge_cols, self.edge_rows
        idx = self.block_y[y] + self.block_x[x] + (np.arange(m) * flat.shape[1])[:, None]
        block = np.maximum(np.take(flat, idx).astype(np.float64), LOG_FLOOR)
        n_win, n_col = self.parts[:2]
        logs = np.log(block[:, n_win:])
        col_corr = np.minimum((logs[:, :n_col].reshape(m, s + er, ec) @ self.col_coef) @ self.col_basis[x], 0)
        row_fit = self.row_coef @ (logs[:, n_col:].reshape(m, er, s) + col_corr[:, s:])  # edge rows, padded
        row_corr = np.minimum(self.row_basis[y] @ row_fit, 0)
        window = block[:, :n_win].reshape(m, s, s) * np.exp(col_corr[:, :s] + row_corr)
        ring = np.log(np.maximum(window.reshape(m, n_win) @ self.blur, LOG_FLOOR))
        gx, gy, hxx, hyy, hxy = (ring @ self.deriv).T
        det = hxx * hyy - hxy * hxy
        ok = (det > 1e-12) & (det > ANISOTROPY * (hxx * hxx + hyy * hyy)) & (hxx < 0) & (score > 0)
        safe = np.where(ok, det, 1.0)
        step = np.stack([-(hyy * gx - hxy * gy) / safe, -(hxx * gy - hxy * gx) / safe], axis=1)
        ok &= (np.abs(step) <= MAX_STEP).all(axis=1)
        return np.where(ok[:, None], step, 0.0).astype(np.float32)


@lru_cache(maxsize=16)
def dark_window(width: int, height: int, kernel: int) -> DarkWindow:
    """The (cached) :class:`DarkWindow` of (width, height) maps and OpenCV's ``kernel``-tap Gaussian."""
    # the taps cv2.GaussianBlur(ksize, sigma=0) uses on float64: OpenCV's fixed tables up to 9 taps, else
    # sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    taps = cv2.getGaussianKernel(kernel, 0, cv2.CV_64F).reshape(-1)
    w, h = width, height
    s = 2 * (kernel // 2 + 1) + 1  # the window: T taps + the ring
    cols, edge_cols, col_coef, col_basis = _axis(w, s)
    rows, edge_rows, row_coef, row_basis = _axis(h, s)
    ec, er = edge_cols.shape[1], edge_rows.shape[1]
    block_y = w * np.concatenate([np.repeat(rows, s, 1), np.repeat(np.concatenate([rows, edge_rows], 1), ec, 1),
                                  np.repeat(edge_rows, s, 1)], 1)
    block_x = np.concatenate([np.tile(cols, (1, s)), np.tile(edge_cols, (1, s + er)), np.tile(cols, (1, er))], 1)
    k1 = np.zeros((s, 3))  # ring cell i reads window rows i .. i + T - 1
    for i in range(3):
        k1[i:i + len(taps), i] = taps
    blur = np.einsum("ai,bj->abij", k1, k1).reshape(s * s, 9)
    tables = dict(block_y=block_y, block_x=block_x, col_coef=col_coef, row_coef=row_coef.T,
                  col_basis=col_basis.transpose(0, 2, 1), row_basis=row_basis, blur=blur,
                  deriv=np.stack(ring_derivatives(), axis=1))
    for v in tables.values():
        v.setflags(write=False)
    return DarkWindow(width=w, height=h, span=s, edge_cols=ec, edge_rows=er, **tables)
