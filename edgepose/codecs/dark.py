"""The DARK / UDP Taylor step computed on a window around each argmax (numpy; device side).

:func:`edgepose.codecs.heatmap.blurred_log_heatmaps` defines the step on whole maps: log-quadratic padding
of the log map (columns, then rows), exp, OpenCV Gaussian blur, log, central differences at the argmax.
The step only reads the blurred log on the 3 x 3 ring around the argmax, and that blur only reads a
(T + 2) x (T + 2) window of the padded map (T = kernel taps), so this module computes the same numbers from
that window alone:

* one gather per map of the window (rows / columns clamped to the map) and of the edge cells its padding
  reads: 3 + 3 cells at the ends of each window row and of the 6 edge rows, and of each window column;
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
order matters only on cells ~1e-10, where no step is ever kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

LOG_FLOOR = 1e-10
MAX_STEP = 1.0  # heatmap px; a larger Newton step means the local model does not fit
EDGE = 6  # edge cells a padding reads per axis: l0, l1, l2 at the low end, then at the high end


def edge_cells(size: int) -> list[int]:
    """The cells the log-quadratic padding extrapolates from: [0, 1, 2, size-1, size-2, size-3], clamped."""
    return [0, min(1, size - 1), min(2, size - 1), size - 1, max(size - 2, 0), max(size - 3, 0)]


def slope_curv(size: int) -> np.ndarray:
    """(6, 4): logs of the edge cells → [slope, curvature] of the low end, then of the high end.

    The padding at distance d outside an end is ``l0 + t * slope + t^2 * curv`` with t = -d, capped at l0.
    Axes shorter than 3 cells are edge-padded: zero slope and curvature.
    """
    m = np.zeros((EDGE, 4))
    if size >= 3:
        for end in (0, 1):
            m[3 * end:3 * end + 3, 2 * end] = [-1.5, 2.0, -0.5]
            m[3 * end:3 * end + 3, 2 * end + 1] = [0.5, -1.0, 0.5]
    return m


def padding_basis(size: int, pad: int, span: int) -> np.ndarray:
    """(size, span, 4): for an argmax at cell c, per window cell c - pad + b: [t, t^2] of the low end, then of
    the high end, where t = -(distance outside that end), 0 inside. Only one end can be non-zero per cell."""
    u = np.arange(size)[:, None] - pad + np.arange(span)[None, :]
    low, high = np.minimum(u, 0), np.minimum(size - 1 - u, 0)
    return np.stack([low, low * low, high, high * high], axis=2).astype(np.float64)


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
    window (S x S, S = T + 2) | edge columns of the window rows and of the edge rows ((S + 6) x 6) | edge rows
    of the window columns (6 x S). ``blur`` ((S * S), 9): window @ blur = the blur at the ring (row-major).
    """

    width: int
    height: int
    pad: int
    span: int
    block_y: np.ndarray
    block_x: np.ndarray
    col_coef: np.ndarray  # (6, 4)
    row_coef: np.ndarray  # (4, 6)
    col_basis: np.ndarray  # (W, 4, S)
    row_basis: np.ndarray  # (H, S, 4)
    blur: np.ndarray
    deriv: np.ndarray  # (9, 5): log ring @ deriv = gx, gy, hxx, hyy, hxy

    @property
    def parts(self) -> list[int]:
        s = self.span
        return [s * s, (s + EDGE) * EDGE, EDGE * s]

    def step(self, flat: np.ndarray, x: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
        """(M, H * W) maps, argmax cells x, y (M,) and maxima (M,) → (M, 2) float32 Taylor step in map px,
        zero where the Hessian is not negative definite (det ≤ 1e-12 or hxx ≥ 0), the maximum is not
        positive or the step is longer than ``MAX_STEP`` on an axis."""
        m, s = len(x), self.span
        idx = self.block_y[y] + self.block_x[x] + (np.arange(m) * flat.shape[1])[:, None]
        block = np.maximum(np.take(flat, idx).astype(np.float64), LOG_FLOOR)
        n_win, n_col = self.parts[:2]
        logs = np.log(block[:, n_win:])
        col_corr = np.minimum((logs[:, :n_col].reshape(m, s + EDGE, EDGE) @ self.col_coef) @ self.col_basis[x], 0)
        row_fit = self.row_coef @ (logs[:, n_col:].reshape(m, EDGE, s) + col_corr[:, s:])  # edge rows, padded
        row_corr = np.minimum(self.row_basis[y] @ row_fit, 0)
        window = block[:, :n_win].reshape(m, s, s) * np.exp(col_corr[:, :s] + row_corr)
        ring = np.log(np.maximum(window.reshape(m, n_win) @ self.blur, LOG_FLOOR))
        gx, gy, hxx, hyy, hxy = (ring @ self.deriv).T
        det = hxx * hyy - hxy * hxy
        ok = (det > 1e-12) & (hxx < 0) & (score > 0)
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
    pad = kernel // 2 + 1
    s = 2 * pad + 1
    rows = np.clip(np.arange(h)[:, None] - pad + np.arange(s), 0, h - 1)  # (H, S) window rows, clamped
    cols = np.clip(np.arange(w)[:, None] - pad + np.arange(s), 0, w - 1)  # (W, S)
    edge_rows, edge_cols = np.tile(edge_cells(h), (h, 1)), np.tile(edge_cells(w), (w, 1))
    block_y = w * np.concatenate([np.repeat(rows, s, 1), np.repeat(np.concatenate([rows, edge_rows], 1), EDGE, 1),
                                  np.repeat(edge_rows, s, 1)], 1)
    block_x = np.concatenate([np.tile(cols, (1, s)), np.tile(edge_cols, (1, s + EDGE)), np.tile(cols, (1, EDGE))], 1)
    k1 = np.zeros((s, 3))  # ring cell i reads window rows i .. i + T - 1
    for i in range(3):
        k1[i:i + len(taps), i] = taps
    blur = np.einsum("ai,bj->abij", k1, k1).reshape(s * s, 9)
    tables = dict(block_y=block_y, block_x=block_x, col_coef=slope_curv(w), row_coef=slope_curv(h).T,
                  col_basis=padding_basis(w, pad, s).transpose(0, 2, 1), row_basis=padding_basis(h, pad, s),
                  blur=blur, deriv=np.stack(ring_derivatives(), axis=1))
    for v in tables.values():
        v.setflags(write=False)
    return DarkWindow(width=w, height=h, pad=pad, span=s, **tables)
