"""Drawing the figures of :mod:`edgepose.data.synthetic_figure`: projection, parts, self-occlusion, paint.

Pixel centres are at integer coordinates (cv2's drawing convention); parts are drawn far to near so
that nearer parts cover farther ones, and each pixel remembers which person owns it (occlusion flags).
Only numpy and cv2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from edgepose.data.synthetic_figure import (
    _FIX,
    _ONE,
    KEYPOINT_POINTS,
    LEFT_SHADE,
    Figure,
    Look,
    face_labels,
    make_texture,
)


class _Part(NamedTuple):
    form: str  # "capsule" (pts: 2 ends), "poly" (convex outline), "circle" (pts: centre), "head"
    pts: np.ndarray  # (P, 2) pixel coordinates in the image
    size: float  # capsule width or circle radius in pixels
    key: float  # draw order: larger = nearer = drawn later
    material: str  # top, bottom, skin, shoe (textures), head
    shade: float  # brightness factor (the person's left side is darker)
    joints: tuple[int, ...]  # COCO keypoints that belong to this part (not occluded by it)


@dataclass
class PersonRender:
    """One drawn person: keypoints (17, 3) x, y, v in image pixels with the face-direction and
    self-occlusion flags (v=1 behind the own torso / limbs, v=0 back-of-head face points, which the
    scene sets to (0, 0, 0)); ``silhouette`` (h, w) bool over the image window at ``origin`` (x0, y0)."""

    keypoints: np.ndarray
    silhouette: np.ndarray
    origin: tuple[int, int]


def project(fig: Figure, scale: float, centre: tuple[float, float]) -> dict[str, np.ndarray]:
    """Name -> (u, v, depth) in pixels: ``u = cx + s X``, ``v = cy - s Y``, depth ``s Z`` (nearer: larger)."""
    cx, cy = centre
    return {k: np.array([cx + scale * p[0], cy - scale * p[1], scale * p[2]]) for k, p in fig.pts.items()}


def _limb_parts(q: dict, s: float, look: Look) -> list[_Part]:
    b = look.build
    parts = []
    for side, shade, o in (("l", LEFT_SHADE, 0), ("r", 1.0, 1)):
        sh, el, wr, hp, kn, an = (q[f"{n}_{side}"] for n in ("sh", "elb", "wri", "hip", "knee", "ank"))
        hand, toe = q[f"hand_{side}"], q[f"toe_{side}"]
        fore = "top" if look.long_sleeves else "skin"
        shin = "bottom" if look.long_pants else "skin"
        for a, c, width, mat, joints in ((sh, el, 0.05, "top", (5, 7)), (el, wr, 0.04, fore, (7, 9)),
                                         (hp, kn, 0.08, "bottom", (11, 13)), (kn, an, 0.06, shin, (13, 15)),
                                         (an, toe, 0.04, "shoe", (15,))):
            key = (a[2] + c[2]) / 2 + (0.002 * s if mat == "shoe" else 0.0)
            parts.append(_Part("capsule", np.array([a[:2], c[:2]]), width * b * s, key, mat, shade,
                               tuple(j + o for j in joints)))
        key = max(hand[2], (el[2] + wr[2]) / 2) + 0.001 * s
        parts.append(_Part("circle", hand[None, :2], 0.022 * b * s, key, "skin", shade, (9 + o,)))
    return parts


def _make_parts(q: dict, fig: Figure, s: float, centre: tuple[float, float]) -> list[_Part]:
    """All parts of a figure, sorted far to near. Limbs level with the torso are drawn after it."""
    tz = (q["pelvis"][2] + q["sh_c"][2]) / 2
    cx, cy = centre
    outline = np.stack([cx + s * fig.torso[:, 0], cy - s * fig.torso[:, 1]], 1).astype(np.float32)
    hull = cv2.convexHull(outline)
    parts = [_Part("poly", hull[:, 0].astype(np.float64), 0.0, tz - 0.03 * s, "top", 0.85, (5, 6, 11, 12)),
             _Part("capsule", np.array([q["sh_c"][:2], (q["neck"][:2] + q["head"][:2]) / 2]),
                   0.045 * fig.look.build * s, tz - 0.031 * s, "skin", 1.0, ()),
             _Part("head", q["head"][None, :2], 0.0, q["head"][2] + 0.04 * s, "head", 1.0, (0, 1, 2, 3, 4))]
    parts += _limb_parts(q, s, fig.look)
    return sorted(parts, key=lambda p: p.key)


def _fixed(pts: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    return np.round((np.asarray(pts, np.float64) - origin) * _ONE).astype(np.int32)


def _draw_shape(mask: np.ndarray, part: _Part, origin: tuple[int, int], grow: float) -> None:
    """Fill ``part`` (grown by ``grow`` pixels) with 255 into ``mask`` whose top-left is ``origin``."""
    pts = _fixed(part.pts, origin)
    if part.form == "capsule":
        t = max(1, round(part.size + 2 * grow))
        cv2.line(mask, tuple(map(int, pts[0])), tuple(map(int, pts[1])), 255, t, cv2.LINE_8, _FIX)
    elif part.form == "circle":
        r = round(max(0.6, part.size + grow) * _ONE)
        cv2.circle(mask, tuple(map(int, pts[0])), r, 255, -1, cv2.LINE_8, _FIX)
    else:
        cv2.fillConvexPoly(mask, pts, 255, cv2.LINE_8, _FIX)
        if grow > 0:
            cv2.polylines(mask, [pts], True, 255, round(2 * grow), cv2.LINE_8, _FIX)


def _window(pts: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Integer window (x0, y0, x1, y1) around ``pts`` clipped to ``shape``; None when empty."""
    x0 = max(0, math.floor(pts[:, 0].min() - margin))
    y0 = max(0, math.floor(pts[:, 1].min() - margin))
    x1 = min(shape[1], math.ceil(pts[:, 0].max() + margin) + 1)
    y1 = min(shape[0], math.ceil(pts[:, 1].max() + margin) + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _paint(image: np.ndarray, owner: np.ndarray, pid: int, part: _Part, fill: np.ndarray | None,
           colour: np.ndarray, origin: tuple[int, int]) -> None:
    """Draw ``part`` with a dark outline: ``fill`` (full-window texture) or plain ``colour``."""
    win = _window(part.pts - origin, part.size / 2 + 3, image.shape)
    if win is None:
        return
    x0, y0, x1, y1 = win
    o = (origin[0] + x0, origin[1] + y0)
    outer = np.zeros((y1 - y0, x1 - x0), np.uint8)
    inner = np.zeros_like(outer)
    _draw_shape(outer, part, o, 1.0)
    _draw_shape(inner, part, o, 0.0)
    sub, own = image[y0:y1, x0:x1], owner[y0:y1, x0:x1]
    ob, ib = outer > 0, inner > 0
    sub[ob] = np.clip(colour * part.shade * 0.45, 0, 255).astype(np.uint8)
    src = fill[y0:y1, x0:x1] if fill is not None else np.broadcast_to(colour, sub.shape)
    sub[ib] = np.clip(src[ib] * np.float32(part.shade), 0, 255).astype(np.uint8)
    own[ob] = pid


def _ellipse(shape: tuple[int, int], centre: np.ndarray, axes: tuple[float, float], angle: float,
             origin: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    c = _fixed(centre[None], origin)[0]
    ax = (round(max(axes[0], 0.6) * _ONE), round(max(axes[1], 0.6) * _ONE))
    cv2.ellipse(mask, (int(c[0]), int(c[1])), ax, angle, 0, 360, 255, -1, cv2.LINE_8, _FIX)
    return mask > 0


def _draw_face(sub: np.ndarray, own: np.ndarray, pid: int, fig: Figure, q: dict, s: float,
               face_v: np.ndarray, o: tuple[int, int]) -> None:
    """Eyes (dark dots), nose mark and mouth where the face looks toward the camera."""
    lh, uh, fh = fig.head_axes.T
    for k, name, colour, r in ((1, "eye_l", (25, 25, 25), 0.0085), (2, "eye_r", (25, 25, 25), 0.0085),
                               (0, "nose", tuple(fig.look.skin * 0.55), 0.009)):
        if face_v[k] == 2:
            c = tuple(map(int, _fixed(q[name][None, :2], o)[0]))
            rr = round(max(0.8, r * s) * _ONE)
            cv2.circle(sub, c, rr, colour, -1, cv2.LINE_AA, _FIX)
            cv2.circle(own, c, rr, pid, -1, cv2.LINE_8, _FIX)
    if face_v[0] == 2 and fh[2] > 0.3:
        m = q["head"][:2] + _dir2(0.05 * fh - 0.038 * uh, s)
        d = _dir2(0.014 * lh, s)
        a, b = _fixed(np.array([m - d, m + d]), o)
        cv2.line(sub, tuple(map(int, a)), tuple(map(int, b)), (60, 50, 140), max(1, round(0.006 * s)),
                 cv2.LINE_AA, _FIX)


def _dir2(v: np.ndarray, s: float) -> np.ndarray:
    """Image-plane displacement (pixels) of a 3D body-unit vector."""
    return np.array([v[0], -v[1]]) * s


def _draw_head(roi: np.ndarray, pm: np.ndarray, pid: int, fig: Figure, q: dict, s: float,
               face_v: np.ndarray, origin: tuple[int, int]) -> None:
    """Head: hair-coloured ellipse, a skin face ellipse on the facing side, ears, face features."""
    c = q["head"][:2]
    win = _window(c[None] - origin, 0.12 * s + 3, roi.shape)
    if win is None:
        return
    x0, y0, x1, y1 = win
    o = (origin[0] + x0, origin[1] + y0)
    sub, own = roi[y0:y1, x0:x1], pm[y0:y1, x0:x1]
    _, uh, fh = fig.head_axes.T
    up = _dir2(uh, s)
    angle = math.degrees(math.atan2(up[1], up[0])) + 90.0
    look = fig.look
    layers = [(c, (0.055 * s, 0.066 * s), look.hair)]
    if fh[2] > 0:
        layers.append((c + _dir2(0.02 * fh - 0.012 * uh, s), (0.046 * s, 0.054 * s), look.skin))
    for k, name in ((3, "ear_l"), (4, "ear_r")):
        if face_v[k] == 2:
            layers.append((q[name][:2], (0.013 * s, 0.02 * s), look.skin * 0.85))
    for centre, (a, b), colour in layers:
        outer = _ellipse(own.shape, centre, (a + 1, b + 1), angle, o)
        inner = _ellipse(own.shape, centre, (a, b), angle, o)
        sub[outer] = np.clip(colour * 0.45, 0, 255).astype(np.uint8)
        sub[inner] = np.clip(colour, 0, 255).astype(np.uint8)
        own[outer] = pid
    _draw_face(sub, own, pid, fig, q, s, face_v, o)


def _self_occlusion(kp: np.ndarray, v: np.ndarray, pm: np.ndarray, parts: list[_Part], q: dict,
                    s: float, origin: tuple[int, int]) -> np.ndarray:
    """v=1 for labelled joints covered by another of the person's own parts, and for shoulders and
    hips on the far side of the torso (turned more than about 50 degrees away) where it covers them."""
    v = v.copy()
    for k in np.flatnonzero(v == 2):
        x, y = round(float(kp[k, 0])) - origin[0], round(float(kp[k, 1])) - origin[1]
        if not (0 <= y < pm.shape[0] and 0 <= x < pm.shape[1]) or pm[y, x] == 0:
            continue
        part = parts[pm[y, x] - 1]
        centre_z, margin = (q["sh_c"][2], 0.09) if k in (5, 6) else (q["pelvis"][2], 0.065)
        if k not in part.joints or (part.form == "poly" and kp[k, 2] < centre_z - margin * s):
            v[k] = 1
    return v


def render_person(image: np.ndarray, fig: Figure, scale: float, centre: tuple[float, float],
                  rng: np.random.Generator) -> PersonRender:
    """Draw ``fig`` into BGR ``image`` (H, W, 3) in place, far parts first; ``scale`` is the standing
    height in pixels and ``centre`` the pelvis position (x, y) in pixels."""
    q = project(fig, scale, centre)
    kp = np.array([q[n] for n in KEYPOINT_POINTS])
    v = np.full(17, 2, np.int64)
    v[:5] = face_labels(fig.face_z)
    win = _window(np.array([p[:2] for p in q.values()]), 0.12 * scale + 4, image.shape)
    if win is None:
        return PersonRender(np.concatenate([kp[:, :2], v[:, None]], 1).astype(np.float32),
                            np.zeros((0, 0), bool), (0, 0))
    x0, y0, x1, y1 = win
    origin = (x0, y0)
    roi = image[y0:y1, x0:x1]
    pm = np.zeros(roi.shape[:2], np.uint8)
    parts = _make_parts(q, fig, scale, centre)
    look = fig.look
    period = (max(2.0, 0.02 * scale), max(3.0, 0.07 * scale))
    fills = {m: make_texture(rng, y1 - y0, x1 - x0, getattr(look, m), period) for m in ("top", "bottom")}
    for i, part in enumerate(parts):
        if part.form == "head":
            _draw_head(roi, pm, i + 1, fig, q, scale, v[:5], origin)
        else:
            colour = getattr(look, part.material)
            _paint(roi, pm, i + 1, part, fills.get(part.material), colour, origin)
    v = _self_occlusion(kp, v, pm, parts, q, scale, origin)
    out = np.concatenate([kp[:, :2], v[:, None]], 1).astype(np.float32)
    return PersonRender(out, pm > 0, origin)
