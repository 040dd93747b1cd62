"""Generated multi-person sequences for the tracking, smoothing and video-loop tests (numpy only)."""

from __future__ import annotations

import numpy as np

from edgepose.runtimes.poses import Poses

# A standing person in COCO-17 order, as fractions of the box (x right, y down).
TEMPLATE = np.array([
    [0.50, 0.08], [0.54, 0.06], [0.46, 0.06], [0.58, 0.08], [0.42, 0.08],  # nose, eyes, ears
    [0.68, 0.22], [0.32, 0.22], [0.76, 0.38], [0.24, 0.38], [0.80, 0.52], [0.20, 0.52],  # shoulders, elbows, wrists
    [0.62, 0.55], [0.38, 0.55], [0.64, 0.76], [0.36, 0.76], [0.64, 0.96], [0.36, 0.96],  # hips, knees, ankles
], np.float32)


def person(cx: float, cy: float, height: float, score: float = 0.9, rng=None, noise: float = 0.0):
    """(keypoints (17, 3), box (4,)) of a person of ``height`` pixels centred at (cx, cy)."""
    w = height * 0.45
    box = np.array([cx - w / 2, cy - height / 2, cx + w / 2, cy + height / 2], np.float32)
    xy = box[:2] + TEMPLATE * [w, height]
    if rng is not None and noise:
        xy = xy + rng.normal(0, noise, xy.shape)
    kps = np.concatenate([xy, np.full((17, 1), score)], axis=1).astype(np.float32)
    return kps, box


def frame_poses(people: list[tuple[np.ndarray, np.ndarray, float]]) -> Poses:
    """Poses of one frame from (keypoints, box, person score) triples."""
    if not people:
        return Poses.empty(17)
    return Poses(np.stack([p[0] for p in people]), np.array([p[2] for p in people], np.float32),
                 np.stack([p[1] for p in people]))


def crossing(frames: int = 60, hidden: range = range(0), seed: int = 0, low: range = range(0)):
    """Two people walking towards each other and past: A (taller, left → right), B (right → left, a little higher
    in the frame). A is not detected at all in the frames of ``hidden`` (occluded by B) and is detected with a low
    score (0.2) in the frames of ``low``. → list of (Poses, true ids) per frame (ids 0 = A, 1 = B)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(frames):
        a = person(100 + 8 * f, 300, 220, rng=rng, noise=2.0)
        b = person(100 + 8 * (frames - 1) - 8 * f, 290, 200, rng=rng, noise=2.0)
        people, truth = [(b[0], b[1], 0.9)], [1]
        if f not in hidden:
            score = 0.2 if f in low else 0.9
            people.insert(0, (a[0], a[1], score))
            truth.insert(0, 0)
        out.append((frame_poses(people), truth))
    return out


class FakeSource:
    """``n`` small frames, each carrying its index in its first pixel (for :class:`FakeBottomUp`); ``read_ms`` of
    sleep per read; ``fail_at``: the read that raises ``OSError`` (a camera unplugged)."""

    def __init__(self, n: int, *, read_ms: float = 0.0, size=(64, 48), fail_at: int | None = None):
        self.n, self.read_ms, self.size, self.fail_at, self.reads = n, read_ms, size, fail_at, 0

    def read(self):
        import time

        if self.read_ms:
            time.sleep(self.read_ms / 1e3)
        if self.reads == self.fail_at:
            raise OSError("camera unplugged")
        if self.reads >= self.n:
            return False, None
        frame = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        frame[0, 0] = (self.reads % 256, self.reads // 256 % 256, self.reads // 65536)
        self.reads += 1
        return True, frame

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: float(self.n)}.get(prop, 0.0)


class FakeBottomUp:
    """A bottom-up 'model' that sees the two people of :func:`crossing` walking back and forth (a period of 120
    frames) in the frame whose index :class:`FakeSource` wrote, both gone for 40 frames every 240 (longer than the
    tracker's default patience: their tracks end and new ones start); ``ms`` of sleep per call."""

    backend = "fake"

    def __init__(self, ms: float = 0.0):
        from types import SimpleNamespace

        self.spec = SimpleNamespace(kind="centernet", bottom_up=True, keypoints="coco", score_threshold=0.2)
        self.stage_times = None
        self.ms = ms
        self.rng = np.random.default_rng(0)

    def __call__(self, frame, boxes=None, score_threshold=None):
        import time

        if self.ms:
            time.sleep(self.ms / 1e3)
        i = int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1]) + 65536 * int(frame[0, 0, 2])
        f = i % 120 if i % 240 < 120 else 119 - i % 120
        if i % 240 >= 200:
            return frame_poses([])
        a = person(100 + 8 * f, 300, 220, rng=self.rng, noise=2.0)
        b = person(100 + 8 * 119 - 8 * f, 290, 200, rng=self.rng, noise=2.0)
        return frame_poses([(a[0], a[1], 0.9), (b[0], b[1], 0.9)])


def frame_with_index(i: int, size=(320, 240)) -> np.ndarray:
    """A blank frame carrying ``i`` in its first pixel, as :class:`FakeSource` writes it."""
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[0, 0] = (i % 256, i // 256 % 256, i // 65536)
    return frame


def _index(frame) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1]) + 65536 * int(frame[0, 0, 2])


class FakeTopDown:
    """A top-down 'model' and its person detector for one still person who walks out of the frame at ``leave``:
    while there, the pose model finds them in any box that covers them (joint scores 0.9); after, a box holds only
    background (joint scores 0.05). Person scores are box score x mean joint score, as the real runtimes give."""

    backend = "fake"

    def __init__(self, leave: int):
        from types import SimpleNamespace

        self.spec = SimpleNamespace(kind="heatmap", bottom_up=False, keypoints="coco", score_threshold=None)
        self.stage_times = None
        self.leave = leave
        self.kps, self.box = person(150, 130, 200)

    def detector(self, frame, score_threshold=None) -> Poses:
        if _index(frame) >= self.leave:
            return frame_poses([])
        return frame_poses([(self.kps, self.box, 0.9)])

    def __call__(self, frame, boxes=None, score_threshold=None) -> Poses:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
        there = _index(frame) < self.leave
        kps = np.repeat(self.kps[None], len(boxes), axis=0)
        kps[..., 2] = 0.9 if there else 0.05
        return Poses(kps, (kps[..., 2].mean(axis=1) * boxes[:, 4]).astype(np.float32), boxes[:, :4].copy())
