"""Pose tracking across video frames (device side: numpy, and scipy for the optimal assignment).

Each frame's people are matched to the tracks of the frames before by OKS (or box IoU) between the person and the
track's predicted pose (its last pose moved by its recent velocity), with an optimal assignment
(``scipy.optimize.linear_sum_assignment``). Matching runs in two stages, ByteTrack's idea: first the confident
people (score >= ``high_score``) against every live track; then the people between ``low_score`` and
``high_score`` (a partly hidden person, a motion-blurred frame) against the tracks still unmatched that were seen
in the previous frame, by box IoU. A confident person no track takes starts a new track; an unconfident one is
left out (id -1). A track no one matches is *lost*; it is kept, still predicted forward, for ``patience`` frames
so that a person hidden for a moment gets the same id back, and then ends.

    tracker = PoseTracker(TrackOptions(), keypoints="coco")
    for poses in frames:
        ids = tracker.update(poses)        # (N,) int: track id per person, -1 = not tracked

Shapes: keypoints (N, K, 3) x, y, score in image pixels; boxes (N, 4) xyxy; scores (N,).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edgepose.errors import BackendUnavailable, ConfigError
from edgepose.utils.numbers import is_number

SIMILARITIES = ("oks", "iou")


@dataclass(frozen=True)
class TrackOptions:
    """How people are matched to tracks; scores are person scores (``Poses.scores``), similarities are 0..1."""

    high_score: float = 0.3  # people scoring at least this match first and may start a track
    low_score: float = 0.1  # people in [low_score, high_score) only continue a track seen in the last frame
    # (scores: the detector's box scores when given to update(), else the person scores)
    min_similarity: float = 0.2  # stage 1 (OKS or IoU): weaker pairs stay unmatched
    low_similarity: float = 0.4  # stage 2 (box IoU)
    patience: int = 30  # frames a lost track waits to be found again before it ends
    similarity: str = "oks"  # "oks" (falls back to IoU where a pair shares no confident joint) or "iou"
    keypoint_score: float = 0.3  # joints scoring below this are left out of OKS, velocity and pose boxes
    trail: int = 16  # centre points kept per track for drawing its trail

    def __post_init__(self) -> None:
        for name in ("high_score", "low_score", "min_similarity", "low_similarity", "keypoint_score"):
            v = getattr(self, name)
            if not is_number(v) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"track option {name}={v!r}: expected a number between 0 and 1")
        if self.low_score > self.high_score:
            raise ConfigError(f"track option low_score={self.low_score} is above high_score={self.high_score}; "
                              "expected low_score <= high_score")
        for name in ("patience", "trail"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ConfigError(f"track option {name}={v!r}: expected a whole number >= 0")
        if self.similarity not in SIMILARITIES:
            raise ConfigError(f"track option similarity={self.similarity!r}: expected one of {', '.join(SIMILARITIES)}")


class Track:
    """One person followed over frames: the last pose seen, a velocity (pixels per frame) and a short trail."""

    def __init__(self, track_id: int, keypoints: np.ndarray, box: np.ndarray, score: float, box_score: float,
                 trail: int, keypoint_score: float):
        self.id = track_id
        self.keypoints = keypoints.astype(np.float32)
        self.box = box.astype(np.float32)
        self.score = float(score)
        self.box_score = float(box_score)
        self.velocity = np.zeros(2, np.float32)
        self.hits = 1
        self.lost = 0  # frames since last matched
        self.trail: deque = deque(maxlen=max(trail, 1))
        self.trail.append(_centre(self.keypoints, self.box, keypoint_score))

    def predicted(self) -> tuple[np.ndarray, np.ndarray]:
        """(keypoints, box) expected in the coming frame: the last pose moved by velocity x frames elapsed."""
        shift = self.velocity * (self.lost + 1)
        kps = self.keypoints.copy()
        kps[:, :2] += shift
        return kps, self.box + np.tile(shift, 2)

    def update(self, keypoints, box, score, box_score, keypoint_score: float) -> None:
        gap = self.lost + 1
        step = (_centre(keypoints, box, keypoint_score) - self.trail[-1]) / gap
        self.velocity = step if self.hits == 1 else (0.6 * step + 0.4 * self.velocity).astype(np.float32)
        self.keypoints, self.box = keypoints.astype(np.float32), box.astype(np.float32)
        self.score, self.box_score = float(score), float(box_score)
        self.hits += 1
        self.lost = 0
        self.trail.append(_centre(self.keypoints, self.box, keypoint_score))


def _centre(keypoints: np.ndarray, box: np.ndarray, keypoint_score: float) -> np.ndarray:
    """Mean of the confident joints (the box centre when fewer than 3 are): where a track is drawn and moves."""
    ok = keypoints[:, 2] >= keypoint_score
    if ok.sum() >= 3:
        return keypoints[ok, :2].mean(axis=0).astype(np.float32)
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def pose_oks(a: np.ndarray, a_boxes: np.ndarray, b: np.ndarray, sigmas, keypoint_score: float) -> np.ndarray:
    """(len(a), len(b)) OKS between poses ``a`` (scale from ``a_boxes``' areas) and ``b`` over the joints confident
    in both; NaN where a pair shares none."""
    sig = np.asarray(sigmas, np.float64)
    d2 = ((a[:, None, :, :2].astype(np.float64) - b[None, :, :, :2]) ** 2).sum(-1)  # (A, B, K)
    area = np.clip((a_boxes[:, 2] - a_boxes[:, 0]) * (a_boxes[:, 3] - a_boxes[:, 1]), 1.0, None)
    e = d2 / (2.0 * area[:, None, None] * (2.0 * sig) ** 2)
    both = (a[:, None, :, 2] >= keypoint_score) & (b[None, :, :, 2] >= keypoint_score)
    n = both.sum(-1)
    total = np.where(both, np.exp(-e), 0.0).sum(-1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def assign(similarity: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Optimal (row, col) pairs maximising the summed similarity over the pairs with similarity >= ``threshold``
    (weaker pairs count as 0 in the optimisation and are never returned)."""
    if similarity.size == 0:
        return []
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        raise BackendUnavailable("scipy is not installed; pose tracking needs it for the optimal assignment: "
                                 "pip install 'edgepose[video]'") from None
    sim = np.nan_to_num(similarity, nan=0.0)
    # pairs below the threshold cannot be kept, so they must not steer the assignment either: zeroed first, else
    # a weak pair taken for its small gain could cost a strong pair its partner
    sim = np.where(sim >= threshold, sim, 0.0)
    rows, cols = linear_sum_assignment(-sim)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if sim[r, c] >= threshold and sim[r, c] > 0]


class PoseTracker:
    """Track ids for the people of consecutive frames (see the module docstring)."""

    def __init__(self, options: TrackOptions | None = None, *, keypoints: str = "coco"):
        from edgepose.keypoints import get_schema

        self.options = options or TrackOptions()
        self.sigmas = np.asarray(get_schema(keypoints).sigmas, np.float64)
        self.tracks: list[Track] = []
        self.next_id = 1
        self.ended = 0  # tracks that ran out of patience (for reports)

    def update(self, poses, box_scores: np.ndarray | None = None, *, from_tracks: bool = False) -> np.ndarray:
        """Match ``poses`` (one frame) to the tracks → (N,) track ids, -1 for a person left out (below
        ``high_score`` and continuing no track, or below ``low_score``). ``box_scores`` (N,) are the detector's
        scores of the people's boxes (a top-down model's person boxes): the two stages then split on them, as
        ByteTrack splits on detection scores, and :meth:`boxes` hands them on; without them the person scores are
        used.

        ``from_tracks``: the boxes came from :meth:`boxes` (a frame the detector skipped), so they say nothing of
        whether a person is still there: the stages split on the person scores (box score x joint scores), pairs
        are matched by OKS only (a box IoU would compare a track with the box it made itself), and no track starts
        (new people are the detector's to find). A person who left then scores low, is left out, and the track
        is lost."""
        o = self.options
        kps, boxes, scores = poses.keypoints, poses.boxes, np.asarray(poses.scores, np.float32)
        split = scores if box_scores is None or from_tracks else np.asarray(box_scores, np.float32)
        box_scores = np.ones(len(scores), np.float32) if box_scores is None else np.asarray(box_scores, np.float32)
        ids = np.full(len(scores), -1, np.int64)
        high = np.flatnonzero(split >= o.high_score)
        low = np.flatnonzero((split >= o.low_score) & (split < o.high_score))
        free = list(range(len(self.tracks)))
        kind1, kind2 = ("pose", "pose") if from_tracks else (o.similarity, "iou")
        pairs = self._match(free, high, kps, boxes, kind1, o.min_similarity)
        seen = [t for t in free if self.tracks[t].lost == 0 and t not in {p[0] for p in pairs}]
        pairs += self._match(seen, low, kps, boxes, kind2, o.low_similarity if kind2 == "iou" else o.min_similarity)
        for t, i in pairs:
            self.tracks[t].update(kps[i], boxes[i], scores[i], box_scores[i], o.keypoint_score)
            ids[i] = self.tracks[t].id
        matched = {t for t, _ in pairs}
        for t in set(range(len(self.tracks))) - matched:
            self.tracks[t].lost += 1
        before = len(self.tracks)
        self.tracks = [t for t in self.tracks if t.lost <= o.patience]
        self.ended += before - len(self.tracks)
        for i in ([] if from_tracks else high):
            if ids[i] < 0:
                self.tracks.append(Track(self.next_id, kps[i], boxes[i], scores[i], box_scores[i], o.trail,
                                         o.keypoint_score))
                ids[i] = self.next_id
                self.next_id += 1
        return ids

    def _match(self, tracks: list[int], people: np.ndarray, kps, boxes, by: str, threshold: float):
        """Optimal pairs (track index, person index) between ``tracks`` and ``people`` by ``by`` similarity: "oks"
        (box IoU where a pair shares no confident joint), "iou", or "pose" (OKS alone; no shared joint: no match)."""
        if not tracks or len(people) == 0:
            return []
        pred = [self.tracks[t].predicted() for t in tracks]
        p_kps = np.stack([k for k, _ in pred])
        p_box = np.stack([b for _, b in pred])
        sim = box_iou(p_box, boxes[people]) if by != "pose" else np.zeros((len(tracks), len(people)))
        if by in ("oks", "pose"):
            oks = pose_oks(p_kps, p_box, kps[people], self.sigmas, self.options.keypoint_score)
            sim = np.where(np.isnan(oks), sim, oks)
        return [(tracks[r], int(people[c])) for r, c in assign(sim, threshold)]

    def boxes(self, expand: float = 1.2, frame_shape: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes for the next frame without running a detector: for each track seen in the last frame, the
        box around its confident joints scaled by ``expand`` about its centre (its last box when fewer than 3 joints
        are confident), moved by its velocity → ((M, 5) xyxy + the detector score its box last had, (M,) ids)."""
        out, ids = [], []
        for t in self.tracks:
            if t.lost:
                continue
            ok = t.keypoints[:, 2] >= self.options.keypoint_score
            if ok.sum() >= 3:
                lo, hi = t.keypoints[ok, :2].min(axis=0), t.keypoints[ok, :2].max(axis=0)
                c, half = (lo + hi) / 2 + t.velocity, (hi - lo) / 2 * expand
                box = np.concatenate([c - half, c + half])
            else:
                box = t.box + np.tile(t.velocity, 2)
            if frame_shape is not None:
                h, w = frame_shape[:2]
                box = np.clip(box, 0, [w, h, w, h])
            if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                out.append([*box, t.box_score])
                ids.append(t.id)
        return np.asarray(out, np.float32).reshape(-1, 5), np.asarray(ids, np.int64)

    def trails(self) -> dict[int, np.ndarray]:
        """{track id: (P, 2) recent centres, oldest first} for the tracks seen in the last frame."""
        return {t.id: np.asarray(t.trail, np.float32) for t in self.tracks if t.lost == 0}

    @property
    def live_ids(self) -> set[int]:
        return {t.id for t in self.tracks}
