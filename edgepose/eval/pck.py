"""PCK metrics: a joint is correct when its error is at most ``alpha`` x a per-instance length.

Shapes: N instances, K keypoints. ``pred`` / ``gt`` (N, K, 2) pixel coordinates, ``visible`` (N, K)
bool (only visible ground-truth joints count), ``norm`` (N,) positive lengths in pixels.

``per_joint[k]`` is the fraction of correct joints over the instances where joint k is visible (NaN if
it never is); ``mean`` is correct / visible over all joints together (the MPII "Mean" weighting);
``count`` (K,) holds the number of visible joints.
"""

from __future__ import annotations

import numpy as np

from edgepose.errors import InputError


def _check(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray) -> tuple[np.ndarray, ...]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    v = np.asarray(visible).astype(bool)
    n = np.asarray(norm, dtype=np.float64).reshape(-1)
    if p.ndim != 3 or p.shape[-1] != 2 or g.shape != p.shape:
        raise InputError(f"pred and gt must both be (N, K, 2); received {p.shape} and {g.shape}")
    if v.shape != p.shape[:2] or n.shape != (p.shape[0],):
        raise InputError(f"visible must be (N, K) = {p.shape[:2]} and norm (N,) = ({p.shape[0]},); "
                         f"received {v.shape} and {n.shape}")
    used = v.any(axis=1)
    bad = np.flatnonzero(used & ~(np.isfinite(n) & (n > 0)))
    if bad.size:
        raise InputError(f"norm must be finite and > 0 for instances with visible joints; received "
                         f"{n[bad[:5]].tolist()} at rows {bad[:5].tolist()}")
    return p, g, v, n


def pck(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray, alpha: float = 0.2) -> dict:
    """PCK@alpha with a per-instance normaliser ``norm`` (N,); returns per_joint (K,), mean, count (K,)."""
    if alpha <= 0:
        raise InputError(f"alpha must be > 0; received {alpha}")
    p, g, v, n = _check(pred, gt, visible, norm)
    safe = np.where(v.any(axis=1), n, 1.0)
    err = np.linalg.norm(p - g, axis=-1) / safe[:, None]
    correct = (err <= alpha) & v
    count = v.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = np.where(count > 0, correct.sum(axis=0) / np.maximum(count, 1), np.nan)
    total = int(count.sum())
    mean = float(correct.sum() / total) if total else float("nan")
    return {"per_joint": per_joint, "mean": mean, "count": count}


def pckh(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_size: np.ndarray,
         alpha: float = 0.5) -> dict:
    """PCKh@alpha: PCK normalised by the head size (N,) (officially 0.6 x the head-box diagonal)."""
    return pck(pred, gt, visible, head_size, alpha)


def pck_bbox(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, boxes_xyxy: np.ndarray,
             alpha: float = 0.2) -> dict:
    """PCK@alpha normalised by max(w, h) of each ground-truth box (N, 4) xyxy (COCO-style data)."""
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"boxes must be (N, 4) xyxy; received {b.shape}")
    norm = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    return pck(pred, gt, visible, norm, alpha)
