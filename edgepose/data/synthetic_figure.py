"""Procedurally drawn articulated human figures in COCO-17 topology: poses and 3D skeleton
(drawing: :mod:`edgepose.data.synthetic_render`).

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
                 period: tuple[float, float] = (3.0, 12.0), texture: str | None = None) -> np.ndarray:
    """(h, w, 3) uint8 fill around BGR ``colour``: solid, stripes, low-frequency noise or checker;
    ``period`` is the pattern's pixel period range."""
    texture = texture or TEXTURES[int(rng.choice(4, p=[0.4, 0.25, 0.25, 0.1]))]
    colour = np.asarray(colour, np.float32)
    if texture == "solid":
        return np.broadcast_to(colour.clip(0, 255).astype(np.uint8), (h, w, 3)).copy()
    if texture == "noise":
        cell = rng.uniform(*period)
        grid = rng.uniform(0.55, 1.25, (max(2, int(h / cell)), max(2, int(w / cell)))).astype(np.float32)
        tex = colour * cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        return tex.clip(0, 255).astype(np.uint8)
    other = colour * rng.uniform(0.4, 0.75) if rng.random() < 0.6 else random_colour(rng, 60)
    p = max(2.0, rng.uniform(*period))
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    if texture == "stripes":
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


def _arm(rng: np.random.Generator, motion: str) -> list[float]:
    u = rng.uniform
    if motion == "down":
        return [u(3, 22), u(60, 110), u(0, 30), u(-10, 40), u(-10, 20)]
    if motion == "up":
        return [u(105, 175), u(30, 110), u(0, 70), u(-20, 50), u(-20, 60)]
    if motion == "reach":
        return [u(55, 120), u(-25, 70), u(0, 35), u(-20, 40), u(-10, 60)]
    if motion == "swing_f":
        return [u(12, 40), u(-10, 20), u(15, 60), u(0, 40), u(0, 30)]
    if motion == "swing_b":
        return [u(10, 35), u(165, 190), u(0, 25), u(-10, 30), u(0, 20)]
    if motion == "rest":
        return [u(15, 70), u(-20, 40), u(30, 110), u(0, 70), u(-10, 40)]
    return [u(0, 180), u(-40, 180), u(0, 130), u(-30, 80), u(-30, 80)]


def _leg(rng: np.random.Generator, motion: str) -> list[float]:
    u = rng.uniform
    if motion == "stand":
        return [u(0, 9), u(40, 120), u(0, 10), u(0, 25)]
    if motion == "step_f":
        return [u(15, 35), u(-10, 20), u(5, 30), u(0, 20)]
    if motion == "step_b":
        return [u(5, 25), u(160, 190), u(15, 60), u(0, 20)]
    if motion == "crouch":
        return [u(60, 115), u(5, 45), u(80, 140), u(5, 30)]
    if motion == "sit":
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
