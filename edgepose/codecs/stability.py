"""Where a keypoint decode is stable: the joints two numerically equal models must decode alike.

Keypoint decoding has discontinuities (an argmax between two almost equal cells, a quarter-pixel shift whose
direction depends on the sign of a tiny difference, a score lowered by the peak-distinctness factor):
numerically equal models may differ there by whole heatmap pixels. The parity gate (:mod:`edgepose.export.parity`)
and the heads compare the stable joints and count the rest; :mod:`edgepose.testing` re-exports both for tests
and users. numpy only (device side).
"""

from __future__ import annotations

import numpy as np


def well_conditioned(heatmaps: np.ndarray, rel_gap: float = 1e-3) -> np.ndarray:
    """(N, K, H, W) → (N, K) bool: the argmax is unique by a margin and the quarter-offset signs are stable."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1).astype(np.float64)
    span = flat.max(-1) - flat.min(-1) + 1e-12
    top2 = np.sort(flat, axis=-1)[..., -2:]
    ok = (top2[..., 1] - top2[..., 0]) > rel_gap * span
    idx = flat.argmax(-1)
    y, x = np.divmod(idx, w)

    def at(dx: int, dy: int) -> np.ndarray:
        xx, yy = np.clip(x + dx, 0, w - 1), np.clip(y + dy, 0, h - 1)
        return np.take_along_axis(flat, (yy * w + xx)[..., None], -1)[..., 0]

    inner_x, inner_y = (x > 0) & (x < w - 1), (y > 0) & (y < h - 1)
    ok &= ~inner_x | (np.abs(at(1, 0) - at(-1, 0)) > rel_gap * span)
    ok &= ~inner_y | (np.abs(at(0, 1) - at(0, -1)) > rel_gap * span)
    return ok


def distinct_peaks(heatmaps: np.ndarray, scores: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    """(N, K) bool: joints whose decoded score is the heatmap's own maximum, i.e. not lowered by the decoder's
    peak-distinctness factor (``peak_margin``). Scores are continuous in the outputs there; where the factor
    acts it divides a small gap by the margin, amplifying float differences, so compare those joints by position."""
    peak = np.asarray(heatmaps, np.float64).reshape(*np.shape(heatmaps)[:2], -1).max(axis=-1)
    return np.abs(np.asarray(scores, np.float64) - peak) <= rel * max(float(np.abs(peak).max()), 1e-12)
