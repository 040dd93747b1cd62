"""Augmentation for real footage (``edgepose distill``): motion blur, occlusion patches, detector-like box jitter
and a second person pasted beside the first.

Synthetic figures need none of these; real video has moving cameras and limbs (blur), people behind poles, bags
and each other (occlusion), and at deployment a detector's box rather than a ground-truth one (jitter). In a crowd a
top-down crop holds more than its own person, and a heatmap model has to learn that its joints are the centred
person's (:func:`paste_person`; the footage here has few such crops). Each is applied with its own probability;
``RealAugment()`` with the defaults is what ``edgepose distill`` trains with.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgepose.errors import ConfigError, InputError


def motion_blur(image: np.ndarray, rng: np.random.Generator, max_length: int = 9) -> np.ndarray:
    """Blur along a random direction with a line kernel of 3..``max_length`` px (a moving camera or limb)."""
    length = int(rng.integers(3, max(3, max_length) + 1))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    total = float(kernel.sum())
    if total <= 0:
        return image
    return cv2.filter2D(image, -1, kernel / total, borderType=cv2.BORDER_REFLECT)


def occlude(image: np.ndarray, rng: np.random.Generator, max_patches: int = 2,
            size: tuple[float, float] = (0.1, 0.35)) -> np.ndarray:
    """Paint 1..``max_patches`` rectangles (sides ``size`` of the image's) of flat colour or noise."""
    out = image.copy()
    h, w = out.shape[:2]
    for _ in range(int(rng.integers(1, max(1, max_patches) + 1))):
        ph, pw = (max(1, int(rng.uniform(*size) * s)) for s in (h, w))
        y, x = int(rng.integers(0, max(1, h - ph + 1))), int(rng.integers(0, max(1, w - pw + 1)))
        if rng.random() < 0.5:
            out[y:y + ph, x:x + pw] = rng.integers(0, 256, size=3, dtype=np.uint8)
        else:
            out[y:y + ph, x:x + pw] = rng.integers(0, 256, size=(ph, pw, 3), dtype=np.uint8)
    return out


def paste_person(crop: np.ndarray, person: np.ndarray, rng: np.random.Generator,
                 height: tuple[float, float] = (0.55, 0.95), offset: tuple[float, float] = (0.2, 0.5)) -> np.ndarray:
    """Paste ``person`` (an (h, w, 3) uint8 cut-out of another person's box) into ``crop`` beside its centre: its
    height ``height`` of the crop's, its centre ``offset`` of the crop's width to the left or right of the crop's
    centre (and up to 0.15 of its height up or down), under a feathered ellipse that drops most of the cut-out's
    background. The crop's targets stay those of the person it is centred on, who the paste partly covers or
    stands beside, as in a crowd."""
    if person.ndim != 3 or person.shape[0] < 2 or person.shape[1] < 2:
        raise InputError(f"paste_person needs an (h, w, 3) cut-out of at least 2x2 px; received {person.shape}")
    big_h, big_w = crop.shape[:2]
    ph = max(2, int(round(rng.uniform(*height) * big_h)))
    pw = max(2, int(round(person.shape[1] * ph / person.shape[0])))
    patch = cv2.resize(person, (pw, ph), interpolation=cv2.INTER_AREA if ph < person.shape[0] else cv2.INTER_LINEAR)
    mask = np.zeros((ph, pw), np.float32)
    cv2.ellipse(mask, (pw // 2, ph // 2), (max(1, int(0.45 * pw)), max(1, int(0.48 * ph))), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.06 * min(pw, ph)))[..., None]
    side = 1.0 if rng.random() < 0.5 else -1.0
    cx = big_w / 2 + side * rng.uniform(*offset) * big_w
    cy = big_h / 2 + rng.uniform(-0.15, 0.15) * big_h
    x0, y0 = int(round(cx - pw / 2)), int(round(cy - ph / 2))
    ax, ay, bx, by = max(0, x0), max(0, y0), min(big_w, x0 + pw), min(big_h, y0 + ph)
    if ax >= bx or ay >= by:
        return crop
    out = crop.copy()
    m = mask[ay - y0:by - y0, ax - x0:bx - x0]
    region = out[ay:by, ax:bx].astype(np.float32)
    pasted = patch[ay - y0:by - y0, ax - x0:bx - x0].astype(np.float32)
    out[ay:by, ax:bx] = np.clip(region * (1 - m) + pasted * m + 0.5, 0, 255).astype(np.uint8)
    return out


def jitter_box(box_xyxy, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Shift each side of an xyxy box by up to ``amount`` of the box's size (independent per side), as a person
    detector's box differs from the person's extent; the box keeps at least 1 px."""
    b = np.asarray(box_xyxy, np.float64).reshape(4)
    w, h = b[2] - b[0], b[3] - b[1]
    out = b + rng.uniform(-amount, amount, size=4) * np.array([w, h, w, h])
    out[2], out[3] = max(out[2], out[0] + 1), max(out[3], out[1] + 1)
    return out.astype(np.float32)


@dataclass(frozen=True)
class RealAugment:
    """Probabilities of motion blur, occlusion and a pasted second person (top-down crops only:
    :class:`edgepose.train.datasets.TopDownDataset` supplies the cut-out), and the box jitter (fraction of the box
    per side)."""

    blur_prob: float = 0.3
    occlude_prob: float = 0.3
    box_jitter: float = 0.1
    paste_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("blur_prob", "occlude_prob", "paste_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1]; received {getattr(self, name)}")
        if not 0.0 <= self.box_jitter < 0.5:
            raise ConfigError(f"box_jitter must be in [0, 0.5); received {self.box_jitter}")

    def pixels(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blur and / or occlusion of an (H, W, 3) uint8 image, each with its probability."""
        if image.ndim != 3 or image.dtype != np.uint8:
            raise InputError(f"RealAugment needs an (H, W, 3) uint8 image; received {image.dtype} {image.shape}")
        if rng.random() < self.blur_prob:
            image = motion_blur(image, rng)
        if rng.random() < self.occlude_prob:
            image = occlude(image, rng)
        return image
