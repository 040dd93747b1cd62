"""Associative-embedding grouping of one image's joint candidates into people (numpy; see
:mod:`edgepose.codecs.ae` for the rules). Device side: numpy only; the assignment solver is passed in."""

from __future__ import annotations

import numpy as np


class _People:
    """Growing people: joints (cap, K, 3), which are set (cap, K), and running tag sums for the mean tags."""

    def __init__(self, cap: int, k: int, d: int) -> None:
        self.joints = np.zeros((cap, k, 3), np.float32)
        self.found = np.zeros((cap, k), bool)
        self.tag_sum = np.zeros((cap, d), np.float64)
        self.count = np.zeros(cap, np.float64)
        self.n = 0

    def mean_tags(self) -> np.ndarray:
        return self.tag_sum[:self.n] / self.count[:self.n, None]

    def add(self, ids: np.ndarray, k: int, cand: np.ndarray, tags: np.ndarray) -> None:
        self.joints[ids, k] = cand
        self.found[ids, k] = True
        self.tag_sum[ids] += tags
        self.count[ids] += 1

    def start(self, k: int, cand: np.ndarray, tags: np.ndarray) -> None:
        ids = np.arange(self.n, self.n + len(cand))
        self.n += len(cand)
        self.add(ids, k, cand, tags)


def group_image(peaks: np.ndarray, tags: np.ndarray, codec, lsa) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's candidates ``peaks`` (K, M, 3), ``tags`` (K, M, D) → keypoints (P', K, 3), scores (P'), boxes
    (P', 4) for at most ``codec.max_people`` people, best first; ``lsa`` is scipy's linear_sum_assignment."""
    k_count, m, d = tags.shape
    people = _People(k_count * m, k_count, d)
    valid = (peaks[..., 2] > codec.detection_threshold) & ~_plateau_twins(peaks, codec.stride / 2)
    tags64 = tags.astype(np.float64)
    for k in np.flatnonzero(valid.any(1)):
        sel = np.flatnonzero(valid[k])
        cand, ctag = peaks[k, sel], tags64[k, sel]
        if not people.n:
            people.start(k, cand, ctag)
            continue
        delta = ctag[:, None, :] - people.mean_tags()[None]
        diff = np.sqrt((delta * delta).sum(-1))  # (m, n)
        rows, cols = _assign(np.rint(diff) * 100 - cand[:, 2:3], lsa)
        good = diff[rows, cols] < codec.tag_threshold
        people.add(cols[good], k, cand[rows[good]], ctag[rows[good]])
        new = np.ones(sel.size, bool)
        new[rows[good]] = False
        if new.any():
            people.start(k, cand[new], ctag[new])
    n = people.n
    joints, found = people.joints[:n], people.found[:n]
    if codec.refine and n:
        _refine(joints, found, people.mean_tags(), peaks, tags, codec.tag_threshold)
    scores = joints[..., 2].mean(-1) if n else np.zeros(0, np.float32)
    order = np.argsort(-scores, kind="stable")[:codec.max_people]
    joints, found, scores = joints[order], found[order], scores[order]
    big = np.float32(np.inf)
    lo = np.where(found[..., None], joints[..., :2], big).min(1)
    hi = np.where(found[..., None], joints[..., :2], -big).max(1)
    boxes = np.where(found.any(1)[:, None], np.concatenate([lo, hi], -1), 0)
    return joints, scores.astype(np.float32), boxes.astype(np.float32)


def _assign(cost: np.ndarray, lsa) -> tuple[np.ndarray, np.ndarray]:
    """Optimal rows → columns of ``cost`` (m, n). When there are no more rows than columns and each row's cheapest
    column is its own, that is the optimum (every row at its minimum): the solver is skipped."""
    best = cost.argmin(1)
    if cost.shape[0] <= cost.shape[1] and len(np.unique(best)) == len(best):
        return np.arange(len(best)), best
    return lsa(cost)


def _plateau_twins(peaks: np.ndarray, cell: float) -> np.ndarray:
    """(K, M) True for a candidate within one high-resolution cell of a better one of its joint: the two cells of
    a plateau both pass the max-pool peak test (and their sub-pixel offsets meet in the middle)."""
    x, y = peaks[..., 0], peaks[..., 1]
    near = (np.abs(x[:, :, None] - x[:, None, :]) < cell) & (np.abs(y[:, :, None] - y[:, None, :]) < cell)
    earlier = np.tri(peaks.shape[1], k=-1, dtype=bool)  # candidates come sorted by value, best first
    return (near & earlier[None] & (peaks[:, None, :, 2] > 0)).any(-1)


def _refine(joints: np.ndarray, found: np.ndarray, mean_tags: np.ndarray, peaks: np.ndarray, tags: np.ndarray,
            tag_threshold: float) -> None:
    """Fill each person's missing joints in place: the candidate (any positive value) with the best value minus tag
    distance to the person's mean tag, scored value x (1 - distance / ``tag_threshold``), 0 from ``tag_threshold``
    on (such a joint stays unfound). HigherHRNet rounds the distance and keeps the value; here every step is
    continuous, so the float noise between two backends cannot switch a refined joint on or off at a threshold."""
    dist = np.linalg.norm(tags[None].astype(np.float64) - mean_tags[:, None, None, :], axis=-1)  # (n, K, M)
    value = peaks[None, :, :, 2]
    ok = (value > 0) & ~found[:, :, None]
    best = np.argmax(np.where(ok, value - dist, -np.inf), axis=-1)[..., None]  # (n, K, 1)
    hit = np.take_along_axis(ok, best, -1)[..., 0]
    picked = peaks[np.arange(peaks.shape[0])[None, :], best[..., 0]]  # (n, K, 3)
    weight = np.clip(1 - np.take_along_axis(dist, best, -1)[..., 0] / tag_threshold, 0, 1)
    picked[..., 2] *= weight.astype(np.float32)
    joints[hit] = picked[hit]
    found |= hit & (weight > 0)
