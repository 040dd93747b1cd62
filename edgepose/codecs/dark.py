"""The DARK / UDP Taylor step computed on a window around each argmax (numpy; device side).

:func:`edgepose.codecs.heatmap.blurred_log_heatmaps` defines the step on whole maps: log-quadratic padding
of the log map (columns, then rows), exp, OpenCV Gaussian blur, log, central differences at the argmax.
The step only reads the blurred log on the 3 x 3 ring around the argmax, and that blur only reads an
S x S window of the padded map (S = T + 2, T = kernel taps; at least 5), so this module computes the same
numbers from that window alone:

* one gather per map of the window, rows / columns clamped to the map, and its log: a window cell beyond
  an end of the map holds that end's value, the first term of the padding;
* the padding as a correction ``min(t * slope + t^2 * curv, 0)`` of those cells, with slope and curvature
  from the logs of the map's three outermost cells. Whenever the window crosses an end, those cells lie
  inside the window, so the correction of every window line is that line's logs times one constant
  S x S matrix per argmax column (``col_pad``), and likewise per argmax row (``row_pad``): the columns are
  padded first, then the rows read the padded edge rows, as numpy does;
* exp, the blur of the ring as one matrix, its log, gradient and Hessian as another.

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


# logs of an end's three outermost cells (l0, l1, l2) -> [slope, curvature] of the quadratic through them
_FIT = np.array([[-1.5, 0.5], [2.0, -1.0], [-0.5, 0.5]])


def _axis(size: int, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis tables for an argmax at each cell c of an axis of ``size`` cells.

    Returns window (size, span): the cells c - pad .. c + pad, clamped to the axis; pad (size, span, span):
    ``logs of a window line @ pad[c]`` = for each window cell beyond an end, ``t * slope + t^2 * curv`` with
    t = -(its distance beyond that end) and slope, curvature of that end's three outermost cells (read from
    the window line, where they are whenever the window crosses that end), 0 inside the axis; capped at 0
    this is ``heatmap._pad_log_quadratic``. Axes shorter than 3 cells are edge-padded (all zero).
    """
    c = np.arange(size)
    lo = span // 2
    u = c[:, None] - lo + np.arange(span)[None, :]  # the axis cell under each window cell
    pad = np.zeros((size, span, span))
    if size >= 3:
        for ends, t in (([0, 1, 2], np.minimum(u, 0)), ([size - 1, size - 2, size - 3], np.minimum(size - 1 - u, 0))):
            for i in np.flatnonzero(t.any(axis=1)):
                rows = np.asarray(ends) - i + lo  # window positions of the end cells (inside: span >= 5)
                pad[i, rows, :] += _FIT @ np.stack([t[i], t[i] * t[i]])
    return np.clip(u, 0, size - 1), pad


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

    index_y (H, S * S) + index_x (W, S * S) at the argmax row / column = flat indices of the window
    (row-major, clamped). col_pad (W, S, S): window logs @ col_pad[x] = the column padding's correction;
    row_pad (H, S, S): row_pad[y] @ window logs = the row padding's (see ``_axis``). ``blur`` (S * S, 9):
    window @ blur = the blur at the ring (row-major); ``deriv`` (9, 5): log ring @ deriv = gx, gy, hxx, hyy, hxy.
    """

    width: int
    height: int
    span: int
    index_y: np.ndarray
    index_x: np.ndarray
    col_pad: np.ndarray
    row_pad: np.ndarray
    blur: np.ndarray
    deriv: np.ndarray

    def step(self, flat: np.ndarray, x: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
        """(M, H * W) maps, argmax cells x, y (M,) and maxima (M,) → (M, 2) float32 Taylor step in map px,
        zero where the Hessian is not clearly negative definite (det ≤ 1e-12, det ≤ ANISOTROPY * (hxx² + hyy²)
        or hxx ≥ 0), the maximum is not positive or the step is longer than ``MAX_STEP`` on an axis."""
        m, s = len(x), self.span
        idx = self.index_y[y] + self.index_x[x] + (np.arange(m) * flat.shape[1])[:, None]
        logs = np.log(np.maximum(np.take(flat, idx).astype(np.float64), LOG_FLOOR)).reshape(m, s, s)
        logs = logs + np.minimum(logs @ self.col_pad[x], 0)  # columns first ...
        logs = logs + np.minimum(self.row_pad[y] @ logs, 0)  # ... then rows, from the padded edge rows
        ring = np.log(np.maximum(np.exp(logs).reshape(m, s * s) @ self.blur, LOG_FLOOR))
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
    s = max(2 * (kernel // 2 + 1) + 1, 5)  # T taps + the ring; 5 keeps an end's 3 cells inside when crossed
    cols, col_pad = _axis(w, s)
    rows, row_pad = _axis(h, s)
    k1 = np.zeros((s, 3))  # ring cell i (window cell s // 2 - 1 + i) reads T window cells centred on it
    for i in range(3):
        first = s // 2 - 1 + i - kernel // 2
        k1[first:first + kernel, i] = taps
    blur = np.einsum("ai,bj->abij", k1, k1).reshape(s * s, 9)
    tables = dict(index_y=w * np.repeat(rows, s, 1), index_x=np.tile(cols, (1, s)), col_pad=col_pad,
                  row_pad=row_pad.transpose(0, 2, 1), blur=blur, deriv=np.stack(ring_derivatives(), axis=1))
    for v in tables.values():
        v.setflags(write=False)
    return DarkWindow(width=w, height=h, span=s, **tables)
