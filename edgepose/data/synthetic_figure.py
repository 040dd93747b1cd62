"""Procedurally drawn articulated human figures in COCO-17 topology: poses, 3D skeleton, drawing.

A figure is built in body units (1.0 = standing height) in a camera frame with X to the image right,
Y up and Z toward the camera, and drawn with a weak-perspective (orthographic) projection
``u = cx + s * X``, ``v = cy - s * Y`` in pixels, pixel centres at integer coordinates (cv2's drawing
convention). Z orders the drawing (far parts first) and decides self-occlusion. The person's own axes
are L (their left), U (up) and F (forward, where the face looks), with L x U = F, so a person facing
the camera has their left on the image right. Left-side limbs are drawn darker (``LEFT_SHADE``) so
that left and right stay distinguishable from the image even from behind. Only numpy and cv2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

LEFT_SHADE = 0.6  # brightness factor of the person's left-side limbs (right side: 1.0, torso: 0.85)
# Body point of each COCO-17 keypoint, in COCO17.names order.
KEYPOINT_POINTS = ("nose", "eye_l", "eye_r", "ear_l", "ear_r", "sh_l", "sh_r", "elb_l", "elb_r",
                   "wri_l", "wri_r", "hip_l", "hip_r", "knee_l", "knee_r", "ank_l", "ank_r")
_FIX = 4  # fractional bits of cv2 drawing coordinates (sub-pixel precision)
_ONE = 1 << _FIX
_SKIN = np.array([(185, 205, 240), (150, 185, 225), (110, 150, 200), (80, 115, 170), (55, 80, 125),
                  (125, 165, 215)], np.float32)
_HAIR = np.array([(20, 20, 25), (30, 45, 75), (55, 100, 150), (150, 150, 155), (35, 55, 130),
                  (90, 140, 195)], np.float32)


def _rot(axis: int, deg: float) -> np.ndarray:
    """Right-handed 3x3 rotation about X (0), Y (1) or Z (2) by ``deg`` degrees."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


def _bend(v: np.ndarray, ref: np.ndarray, fallback: np.ndarray, deg: float) -> np.ndarray:
    """Rotate unit vector ``v`` by ``deg`` toward ``ref`` (``fallback`` where ref is parallel to v)."""
    perp = ref - np.dot(ref, v) * v
    if np.linalg.norm(perp) < 0.25:
        perp = fallback - np.dot(fallback, v) * v
    perp = _unit(perp)
    a = math.radians(deg)
    return math.cos(a) * v + math.sin(a) * perp


TEXTURES = ("solid", "stripes", "noise", "checker")


def random_colour(rng: np.random.Generator, min_value: float) -> np.ndarray:
    """A random BGR colour (float32) whose brightest channel is at least ``min_value``."""
    c = rng.uniform(0, 255, 3)
    return np.minimum(c + max(0.0, min_value - float(c.max())), 255).astype(np.float32)


def make_texture(rng: np.random.Generator, h: int, w: int, colour: np.ndarray,
                 period: tuple[float, float] = (3.0, 12.0), kind: str | None = None) -> np.ndarray:
    """(h, w, 3) uint8 fill around BGR ``colour``: solid, stripes, low-frequency noise or checker;
    ``period`` is the pattern's pixel period range."""
    kind = kind or TEXTURES[int(rng.choice(4, p=[0.4, 0.25, 0.25, 0.1]))]
    colour = np.asarray(colour, np.float32)
    if kind == "solid":
        return np.broadcast_to(colour.clip(0, 255).astype(np.uint8), (h, w, 3)).copy()
    if kind == "noise":
        cell = rng.uniform(*period)
        grid = rng.uniform(0.55, 1.25, (max(2, int(h / cell)), max(2, int(w / cell)))).astype(np.float32)
        tex = colour * cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        return tex.clip(0, 255).astype(np.uint8)
    other = colour * rng.uniform(0.4, 0.75) if rng.random() < 0.6 else random_colour(rng, 60)
    p = max(2.0, rng.uniform(*period))
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    if kind == "stripes":
        a = rng.uniform(0, math.pi)
        sel = ((xs * math.cos(a) + ys * math.sin(a)) / p) % 1.0 < rng.uniform(0.3, 0.7)
    else:
        sel = ((xs // p) + (ys // p)) % 2 == 0
    tex = np.where(sel[..., None], colour, other.astype(np.float32))
    return tex.clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Pose:
    """Joint angles in degrees. Limb direction: elevation from straight down (0) to straight up (180)
    and azimuth around the vertical (0 forward, 90 outward, 180 backward, negative across the body)."""

    arms: np.ndarray  # (2, 5) left, right: elevation, azimuth, elbow flexion, bend toward midline, bend up
    legs: np.ndarray  # (2, 4) left, right: elevation, azimuth, knee flexion, toe-out
    torso: np.ndarray  # (3,) forward lean, side lean, twist
    head: np.ndarray  # (3,) yaw, pitch (down +), roll
    view: np.ndarray  # (3,) body yaw (0 = facing the camera, 90 = facing image right), camera pitch, tilt


def _arm(rng: np.random.Generator, kind: str) -> list[float]:
    u = rng.uniform
    if kind == "down":
        return [u(3, 22), u(60, 110), u(0, 30), u(-10, 40), u(-10, 20)]
    if kind == "up":
        return [u(105, 175), u(30, 110), u(0, 70), u(-20, 50), u(-20, 60)]
    if kind == "reach":
        return [u(55, 120), u(-25, 70), u(0, 35), u(-20, 40), u(-10, 60)]
    if kind == "swing_f":
        return [u(12, 40), u(-10, 20), u(15, 60), u(0, 40), u(0, 30)]
    if kind == "swing_b":
        return [u(10, 35), u(165, 190), u(0, 25), u(-10, 30), u(0, 20)]
    if kind == "rest":
        return [u(15, 70), u(-20, 40), u(30, 110), u(0, 70), u(-10, 40)]
    return [u(0, 180), u(-40, 180), u(0, 130), u(-30, 80), u(-30, 80)]


def _leg(rng: np.random.Generator, kind: str) -> list[float]:
    u = rng.uniform
    if kind == "stand":
        return [u(0, 9), u(40, 120), u(0, 10), u(0, 25)]
    if kind == "step_f":
        return [u(15, 35), u(-10, 20), u(5, 30), u(0, 20)]
    if kind == "step_b":
        return [u(5, 25), u(160, 190), u(15, 60), u(0, 20)]
    if kind == "crouch":
        return [u(60, 115), u(5, 45), u(80, 140), u(5, 30)]
    if kind == "sit":
        return [u(70, 100), u(0, 30), u(65, 105), u(0, 25)]
    if rng.random() < 0.3:
        return [u(0, 35), u(150, 200), u(0, 120), u(0, 30)]
    return [u(0, 100), u(-20, 100), u(0, 140), u(0, 30)]


_POSES = {  # name: (probability, arm kinds (left, right), leg kinds (left, right), forward-lean range)
    "standing": (0.24, ("down", "down"), ("stand", "stand"), (-5, 8)),
    "walking": (0.18, ("swing_b", "swing_f"), ("step_f", "step_b"), (-3, 10)),
    "arms_up": (0.12, ("up", "up"), ("stand", "stand"), (-5, 8)),
    "one_arm_up": (0.06, ("up", "down"), ("stand", "stand"), (-5, 8)),
    "reaching": (0.12, ("reach", "down"), ("stand", "step_f"), (0, 25)),
    "crouching": (0.08, ("rest", "rest"), ("crouch", "crouch"), (15, 50)),
    "sitting": (0.06, ("rest", "rest"), ("sit", "sit"), (-8, 15)),
    "random": (0.14, ("any", "any"), ("any", "any"), (-15, 40)),
}


def _sample_yaw(rng: np.random.Generator) -> float:
    """Mostly facing the camera, some three-quarter, side and facing-away views."""
    r = rng.random()
    lo, hi = (0, 30) if r < 0.55 else (30, 65) if r < 0.75 else (65, 115) if r < 0.88 else (115, 180)
    return float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))


def sample_pose(rng: np.random.Generator) -> Pose:
    """Draw a pose class (standing, walking, arms up, reaching, crouching, sitting, random) and angles."""
    names = list(_POSES)
    probs = np.array([_POSES[n][0] for n in names])
    name = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    _, arm_kinds, leg_kinds, lean = _POSES[name]
    if rng.random() < 0.5:  # mirror the asymmetric pose classes
        arm_kinds, leg_kinds = arm_kinds[::-1], leg_kinds[::-1]
    arms = np.array([_arm(rng, k) for k in arm_kinds])
    legs = np.array([_leg(rng, k) for k in leg_kinds])
    torso = np.array([rng.uniform(*lean), rng.uniform(-8, 8), rng.uniform(-15, 15)])
    head = np.array([rng.uniform(-35, 35), rng.uniform(-15, 20), rng.uniform(-12, 12)])
    view = np.array([_sample_yaw(rng), rng.uniform(-12, 12), rng.normal(0, 6)])
    return Pose(arms=arms, legs=legs, torso=torso, head=head, view=view)


@dataclass(frozen=True)
class Look:
    """Colours (BGR float) and clothing of one person."""

    skin: np.ndarray
    hair: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    shoe: np.ndarray
    long_sleeves: bool
    long_pants: bool
    build: float  # limb thickness factor


def sample_look(rng: np.random.Generator) -> Look:
    skin = _SKIN[rng.integers(len(_SKIN))] + rng.uniform(-12, 12, 3)
    hair = _HAIR[rng.integers(len(_HAIR))] + rng.uniform(-10, 10, 3)
    return Look(skin=skin, hair=hair, top=random_colour(rng, 100), bottom=random_colour(rng, 90),
                shoe=random_colour(rng, 20) * rng.uniform(0.3, 0.8), long_sleeves=bool(rng.random() < 0.5),
                long_pants=bool(rng.random() < 0.7), build=float(rng.uniform(0.85, 1.25)))


@dataclass(frozen=True)
class Figure:
    """A posed 3D figure in body units (height 1), camera frame (X right, Y up, Z toward the camera)."""

    pts: dict[str, np.ndarray]  # named 3D points (joints, hands, toes, head centre, face points)
    torso: np.ndarray  # (12, 3) torso outline points (the drawn torso is their projected convex hull)
    head_axes: np.ndarray  # (3, 3) columns: the head's L, U, F axes
    face_z: np.ndarray  # (5,) camera-facing component of the outward normal of nose, eyes, ears
    look: Look


def _limb_dir(elev: float, azim: float, up: np.ndarray, fwd: np.ndarray, out: np.ndarray) -> np.ndarray:
    e, a = math.radians(elev), math.radians(azim)
    return -math.cos(e) * up + math.sin(e) * (math.cos(a) * fwd + math.sin(a) * out)


def _add_arms(p: dict, pose: Pose, up_frame: np.ndarray, rng: np.random.Generator) -> None:
    lu, uu, fu = up_frame.T
    upper, fore = rng.uniform(0.175, 0.195), rng.uniform(0.14, 0.155)
    for i, side in enumerate("lr"):
        out = lu if side == "l" else -lu
        elev, azim, flex, inward, upward = pose.arms[i]
        d1 = _limb_dir(elev, azim, uu, fu, out)
        a, b = math.radians(inward), math.radians(upward)
        ref = math.cos(b) * (math.cos(a) * fu - math.sin(a) * out) + math.sin(b) * uu
        d2 = _bend(d1, ref, uu, flex)
        p[f"elb_{side}"] = p[f"sh_{side}"] + upper * d1
        p[f"wri_{side}"] = p[f"elb_{side}"] + fore * d2
        p[f"hand_{side}"] = p[f"wri_{side}"] + 0.035 * d2


def _add_legs(p: dict, pose: Pose, root: np.ndarray, rng: np.random.Generator) -> None:
    lr, ur, fr = root.T
    thigh, shin = rng.uniform(0.235, 0.255), rng.uniform(0.235, 0.255)
    for i, side in enumerate("lr"):
        out = lr if side == "l" else -lr
        elev, azim, flex, toe_out = pose.legs[i]
        d1 = _limb_dir(elev, azim, ur, fr, out)
        knee_axis = _rot(0, flex)  # knee flexion: rotation about the body's left axis, shin goes back
        d2 = root @ knee_axis @ root.T @ d1
        t = math.radians(toe_out)
        foot = _unit(math.cos(t) * fr + math.sin(t) * out - 0.3 * ur)
        p[f"knee_{side}"] = p[f"hip_{side}"] + thigh * d1
        p[f"ank_{side}"] = p[f"knee_{side}"] + shin * d2
        p[f"toe_{side}"] = p[f"ank_{side}"] + 0.1 * foot


def _add_head(p: dict, head: np.ndarray) -> np.ndarray:
    """Head centre, face points and the camera-facing component of their outward normals."""
    lh, uh, fh = head.T
    c = p["neck"] + 0.085 * uh
    p["head"] = c
    p["nose"] = c + 0.062 * fh - 0.012 * uh
    p["eye_l"] = c + 0.046 * fh + 0.008 * uh + 0.022 * lh
    p["eye_r"] = c + 0.046 * fh + 0.008 * uh - 0.022 * lh
    p["ear_l"] = c + 0.054 * lh - 0.006 * fh
    p["ear_r"] = c - 0.054 * lh - 0.006 * fh
    cos30, sin30 = 0.866, 0.5
    normals = [fh, cos30 * fh + sin30 * lh, cos30 * fh - sin30 * lh, lh, -lh]
    return np.array([n[2] for n in normals])


def build_figure(pose: Pose, look: Look, rng: np.random.Generator) -> Figure:
    """Pose the skeleton: pelvis at the origin, limb lengths with per-person variation."""
    yaw, pitch, tilt = pose.view
    root = _rot(2, tilt) @ _rot(0, pitch) @ _rot(1, yaw)
    lean, side, twist = pose.torso
    upper = root @ _rot(1, twist) @ _rot(0, lean) @ _rot(2, side)
    head = upper @ _rot(1, pose.head[0]) @ _rot(0, pose.head[1]) @ _rot(2, pose.head[2])
    lr, ur, fr = root.T
    lu, uu, fu = upper.T
    sw, hw = 0.115 * rng.uniform(0.88, 1.12), 0.085 * rng.uniform(0.88, 1.15)
    p: dict[str, np.ndarray] = {"pelvis": np.zeros(3), "hip_l": hw * lr, "hip_r": -hw * lr}
    sc = 0.29 * rng.uniform(0.95, 1.05) * uu
    p.update(sh_c=sc, sh_l=sc + sw * lu, sh_r=sc - sw * lu, neck=sc + 0.03 * uu)
    _add_arms(p, pose, upper, rng)
    _add_legs(p, pose, root, rng)
    face_z = _add_head(p, head)
    top = [sc + k * (sw + 0.018) * lu + 0.025 * uu + d * 0.055 * fu for k in (-1, 1) for d in (-1, 1)]
    mid = [sc - 0.15 * uu + k * 0.85 * sw * lu + d * 0.06 * fu for k in (-1, 1) for d in (-1, 1)]
    low = [k * (hw + 0.022) * lr - 0.035 * ur + d * 0.05 * fr for k in (-1, 1) for d in (-1, 1)]
    return Figure(pts=p, torso=np.array(top + mid + low), head_axes=head, face_z=face_z, look=look)


def face_labels(face_z: np.ndarray) -> np.ndarray:
    """COCO v for nose, eyes (2 facing, 1 turned away, 0 back of the head) and ears (2 or 1)."""
    v = np.where(face_z > -0.1, 2, np.where(face_z > -0.45, 1, 0))
    v[3:] = np.where(face_z[3:] > -0.3, 2, 1)
    return v


def figure_extent(fig: Figure) -> np.ndarray:
    """Projected 2D box (x0, y0, x1, y1) in body units, image axes (y down), pelvis at the origin."""
    pts = np.array(list(fig.pts.values()) + list(fig.torso))
    u, v = pts[:, 0], -pts[:, 1]
    m = 0.06 * fig.look.build
    return np.array([u.min() - m, v.min() - m, u.max() + m, v.max() + m])


# --------------------------------------------------------------------------------------------- drawing

class _Part(NamedTuple):
    kind: str  # "capsule" (pts: 2 ends), "poly" (convex outline), "circle" (pts: centre), "head"
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
    if part.kind == "capsule":
        t = max(1, round(part.size + 2 * grow))
        cv2.line(mask, tuple(map(int, pts[0])), tuple(map(int, pts[1])), 255, t, cv2.LINE_8, _FIX)
    elif part.kind == "circle":
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
        if k not in part.joints or (part.kind == "poly" and kp[k, 2] < centre_z - margin * s):
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
        if part.kind == "head":
            _draw_head(roi, pm, i + 1, fig, q, scale, v[:5], origin)
        else:
            colour = getattr(look, part.material)
            _paint(roi, pm, i + 1, part, fills.get(part.material), colour, origin)
    v = _self_occlusion(kp, v, pm, parts, q, scale, origin)
    out = np.concatenate([kp[:, :2], v[:, None]], 1).astype(np.float32)
    return PersonRender(out, pm > 0, origin)
