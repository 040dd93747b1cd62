"""Draw :class:`~edgepose.poses.Poses` on a frame (device side: numpy + OpenCV only)."""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.keypoints import get_schema

# BGR: the person's left side blue, right side orange, the centre line yellow
SIDE_COLOURS = {"left": (255, 140, 0), "right": (0, 120, 255), "centre": (0, 230, 230)}
SHIFT = 4  # sub-pixel drawing: coordinates are multiplied by 2**SHIFT


def _side(name: str) -> str:
    return "left" if name.startswith("left") else "right" if name.startswith("right") else "centre"


def _pt(xy) -> tuple[int, int]:
    return tuple(int(round(float(v) * (1 << SHIFT))) for v in xy)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per track id (golden-ratio hues)."""
    hue = int((track_id * 0.618034 % 1.0) * 180)
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(v) for v in bgr)


def _draw_trails(out: np.ndarray, trails: dict, thick: int) -> None:
    for tid, pts in trails.items():
        for a, b in zip(pts[:-1], pts[1:]):
            cv2.line(out, _pt(a), _pt(b), track_colour(tid), thick, cv2.LINE_AA, SHIFT)


def draw_poses(image: np.ndarray, poses, *, keypoints: str = "coco", min_score: float = 0.2,
               label: str | None = None, ids=None, trails: dict | None = None) -> np.ndarray:
    """A copy of BGR ``image`` with every person's box, skeleton and keypoints scoring >= ``min_score``.

    ``label`` (e.g. "onnx int8 · 3.1 ms") is written in the top-left corner. With track ``ids`` (N,) each box is
    drawn in its track's colour and labelled with its id; ``trails`` ({id: (P, 2) points}) are drawn as lines.
    """
    schema = get_schema(keypoints)
    sides = [_side(n) for n in schema.names]
    out = image.copy()
    thick = max(1, round(min(out.shape[:2]) / 320))
    radius = max(2, round(min(out.shape[:2]) / 160))
    if trails:
        _draw_trails(out, trails, thick)
    ids = [None] * len(poses) if ids is None else [int(i) for i in ids]
    for kps, box, score, tid in zip(poses.keypoints, poses.boxes, poses.scores, ids):
        colour = (0, 200, 0) if tid is None else track_colour(tid)
        text = f"{float(score):.2f}" if tid is None else f"#{tid} {float(score):.2f}"
        cv2.rectangle(out, _pt(box[:2]), _pt(box[2:]), colour, thick, cv2.LINE_AA, SHIFT)
        cv2.putText(out, text, (int(box[0]), max(12, int(box[1]) - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, colour, thick, cv2.LINE_AA)
        ok = kps[:, 2] >= min_score
        for a, b in schema.skeleton:
            if ok[a] and ok[b]:
                colour = SIDE_COLOURS[sides[a] if sides[a] == sides[b] else "centre"]
                cv2.line(out, _pt(kps[a, :2]), _pt(kps[b, :2]), colour, thick + 1, cv2.LINE_AA, SHIFT)
        for k in np.flatnonzero(ok):
            cv2.circle(out, _pt(kps[k, :2]), radius << SHIFT, SIDE_COLOURS[sides[k]], -1, cv2.LINE_AA, SHIFT)
    if label:
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(out, (0, 0), (tw + 8, th + 10), (0, 0, 0), -1)
        cv2.putText(out, label, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out
