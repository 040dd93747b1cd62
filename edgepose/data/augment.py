"""Training-time augmentation: colour jitter and the per-sample top-down / bottom-up transforms.

Built on the geometry of :mod:`edgepose.data.transforms` (the part the runtimes share); numpy + OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgepose.data.transforms import (
    _compose,
    _hflip_matrix,
    _keypoints,
    _size,
    box_to_center_scale,
    get_affine_matrix,
    letterbox_matrix,
    map_keypoints,
    transform_points,
    warp,
)
from edgepose.errors import ConfigError, InputError
from edgepose.keypoints import KeypointSchema, get_schema


def _gray(img: np.ndarray) -> np.ndarray:
    """Luma of a float BGR image (ITU-R BT.601 weights)."""
    return img[..., 0] * 0.114 + img[..., 1] * 0.587 + img[..., 2] * 0.299


def color_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
    hue: float = 0.05,
) -> np.ndarray:
    """Random brightness, contrast, saturation (factors in ``1 +- x``) and hue (``+- hue`` turns).

    ``image``: (H, W, 3) BGR uint8; returns a new uint8 image of the same shape.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputError(f"color_jitter needs an (H, W, 3) uint8 BGR image; received {img.dtype} {img.shape}")
    x = img.astype(np.float32)
    if brightness > 0:
        x *= rng.uniform(1.0 - brightness, 1.0 + brightness)
    if contrast > 0:
        mu = float(_gray(x).mean())
        x = (x - mu) * rng.uniform(1.0 - contrast, 1.0 + contrast) + mu
    if saturation > 0:
        g = _gray(x)[..., None]
        x = g + (x - g) * rng.uniform(1.0 - saturation, 1.0 + saturation)
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if hue > 0:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)  # uint8 hue is 0..179 (degrees / 2)
        shift = round(rng.uniform(-hue, hue) * 180.0)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return out


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"image must be a non-empty (H, W, 3) uint8 BGR array; received {img.dtype} {img.shape}")
    return img


def _check_range(name: str, lo_hi: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in lo_hi)
    if not 0 < lo <= hi:
        raise ConfigError(f"{name} must be (low, high) with 0 < low <= high; received {tuple(lo_hi)!r}")
    return lo, hi


class TopDownTransform:
    """Crop one person to ``input_size`` (w, h), with training augmentation when ``train=True``.

    Training samples: flip with ``flip_prob`` (joints swap per ``schema``), a scale factor uniform in
    ``scale_range``, a rotation uniform in ``+-rot_range`` degrees with ``rot_prob``, and colour jitter on
    the crop. Evaluation (``train=False``) is deterministic: box -> centre/scale -> crop.
    ``meta["M"]`` maps ORIGINAL image pixels to crop pixels (a flip, if any, is folded in), so
    ``invert_affine(meta["M"])`` takes crop predictions back to the image; when ``meta["flip"]`` is
    True the joint channels were also swapped.
    """

    def __init__(
        self,
        input_size: Sequence[int],
        *,
        train: bool,
        rng: np.random.Generator | None = None,
        rot_range: float = 30.0,
        scale_range: Sequence[float] = (0.75, 1.25),
        flip_prob: float = 0.5,
        rot_prob: float = 0.6,
        color: bool = True,
        schema: KeypointSchema | str = "coco",
        padding: float = 1.25,
        udp: bool = False,
        border_value: float = 0,
        real=None,
    ) -> None:
        self.real = real  # an edgepose.data.augment_real.RealAugment: box jitter, blur, occlusion (training only)
        self.input_size = _size(input_size, "input_size")
        self.train = bool(train)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.rot_range = float(rot_range)
        self.scale_range = _check_range("scale_range", scale_range)
        if not (0.0 <= flip_prob <= 1.0 and 0.0 <= rot_prob <= 1.0):
            raise ConfigError(f"flip_prob and rot_prob must be in [0, 1]; received {flip_prob}, {rot_prob}")
        self.flip_prob, self.rot_prob, self.color = float(flip_prob), float(rot_prob), bool(color)
        self.schema = get_schema(schema)
        self.flip_index = np.asarray(self.schema.flip_index())
        self.padding, self.udp, self.border_value = float(padding), bool(udp), border_value

    def _sample(self) -> tuple[bool, float, float]:
        flip = bool(self.rng.random() < self.flip_prob)
        s = float(self.rng.uniform(*self.scale_range))
        rot = float(self.rng.uniform(-self.rot_range, self.rot_range)) if self.rng.random() < self.rot_prob else 0.0
        return flip, s, rot

    def __call__(
        self, image: np.ndarray, box_xyxy: Sequence[float] | np.ndarray, keypoints: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict]:
        """``image`` (H, W, 3) uint8, box (4,) xyxy, keypoints (K, 3) -> (crop, keypoints in crop, meta)."""
        img = _check_image(image)
        kps = _keypoints(keypoints, self.schema.num_keypoints, ndim=2)
        img_w = img.shape[1]
        W, H = self.input_size
        if self.train and self.real is not None and self.real.box_jitter > 0:
            from edgepose.data.augment_real import jitter_box

            box_xyxy = jitter_box(box_xyxy, self.rng, self.real.box_jitter)
        center, scale = box_to_center_scale(box_xyxy, W / H, self.padding)
        flip, s, rot = self._sample() if self.train else (False, 1.0, 0.0)
        scale = scale * s
        crop_center = np.array([img_w - 1 - center[0], center[1]]) if flip else center
        M = get_affine_matrix(crop_center, scale, self.input_size, rot, udp=self.udp)
        if flip:
            M = _compose(M, _hflip_matrix(img_w))
        crop = warp(img, M, self.input_size, self.border_value)
        out = map_keypoints(kps, M, self.input_size, self.flip_index if flip else None)
        if self.train and self.color:
            crop = color_jitter(crop, self.rng)
        if self.train and self.real is not None:
            crop = self.real.pixels(crop, self.rng)
        meta = {"center": center, "scale": scale, "rot": rot, "flip": flip, "M": M,
                "image_size": (img_w, img.shape[0]), "input_size": self.input_size}
        return crop, out, meta


class BottomUpTransform:
    """Letterbox a whole image with many people to ``input_size`` (w, h); augment when ``train=True``.

    Training adds, about the output centre: a scale factor uniform in ``scale_range``, a rotation
    uniform in ``+-rot_range`` degrees, a shift uniform in ``+-shift_range`` of the output size, a flip
    with ``flip_prob`` and colour jitter. Boxes are recomputed from their four transformed corners and
    clipped to ``[0, W-1] x [0, H-1]``; people whose clipped box is empty are dropped
    (``meta["keep"]`` holds the indices of the kept ones). ``meta["M"]`` maps original pixels to output
    pixels, the flip included.
    """

    def __init__(
        self,
        input_size: Sequence[int],
        *,
        train: bool,
        rng: np.random.Generator | None = None,
        rot_range: float = 30.0,
        scale_range: Sequence[float] = (0.75, 1.5),
        shift_range: float = 0.2,
        flip_prob: float = 0.5,
        color: bool = True,
        schema: KeypointSchema | str = "coco",
        pad_value: float = 0,
        real=None,
    ) -> None:
        self.real = real  # an edgepose.data.augment_real.RealAugment: blur and occlusion (training only)
        self.input_size = _size(input_size, "input_size")
        self.train = bool(train)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.rot_range, self.shift_range = float(rot_range), float(shift_range)
        self.scale_range = _check_range("scale_range", scale_range)
        if not 0.0 <= flip_prob <= 1.0:
            raise ConfigError(f"flip_prob must be in [0, 1]; received {flip_prob}")
        self.flip_prob, self.color, self.pad_value = float(flip_prob), bool(color), pad_value
        self.schema = get_schema(schema)
        self.flip_index = np.asarray(self.schema.flip_index())

    def _augment_matrix(self) -> tuple[np.ndarray, bool, float, float]:
        W, H = self.input_size
        s = float(self.rng.uniform(*self.scale_range))
        rot = float(self.rng.uniform(-self.rot_range, self.rot_range))
        shift = self.rng.uniform(-self.shift_range, self.shift_range, size=2) * np.array([W, H])
        A = cv2.getRotationMatrix2D(((W - 1) / 2.0, (H - 1) / 2.0), rot, s).astype(np.float64)
        A[:, 2] += shift
        flip = bool(self.rng.random() < self.flip_prob)
        if flip:
            A = _compose(_hflip_matrix(W), A)
        return A, flip, s, rot

    def _boxes(self, boxes: np.ndarray, M: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
        corners = np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1),
                            np.stack([x1, y2], -1), np.stack([x2, y2], -1)], axis=1)
        pts = transform_points(corners.astype(np.float64), M)
        W, H = self.input_size
        lo, hi = pts.min(axis=1), pts.max(axis=1)
        out = np.concatenate([lo, hi], axis=1)
        out[:, 0::2] = np.clip(out[:, 0::2], 0, W - 1)
        out[:, 1::2] = np.clip(out[:, 1::2], 0, H - 1)
        return out.astype(np.float32)

    def __call__(
        self, image: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """``image`` (H, W, 3) uint8, keypoints (P, K, 3), boxes (P, 4) xyxy -> (image, kps, boxes, meta)."""
        img = _check_image(image)
        kps = _keypoints(keypoints, self.schema.num_keypoints, ndim=3)
        bxs = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        if kps.shape[0] != bxs.shape[0]:
            raise InputError(f"need keypoints (P, K, 3) and boxes (P, 4) for the same P; "
                             f"received {kps.shape} and {np.shape(boxes)}")
        M = letterbox_matrix((img.shape[1], img.shape[0]), self.input_size)
        flip, s, rot = False, 1.0, 0.0
        if self.train:
            A, flip, s, rot = self._augment_matrix()
            M = _compose(A, M)
        out_img = warp(img, M, self.input_size, self.pad_value)
        out_kps = map_keypoints(kps, M, self.input_size, self.flip_index if flip else None)
        out_boxes = self._boxes(bxs, M)
        keep = np.flatnonzero((out_boxes[:, 2] > out_boxes[:, 0]) & (out_boxes[:, 3] > out_boxes[:, 1]))
        if self.train and self.color:
            out_img = color_jitter(out_img, self.rng)
        if self.train and self.real is not None:
            out_img = self.real.pixels(out_img, self.rng)
        meta = {"M": M, "flip": flip, "scale": s, "rot": rot, "keep": keep,
                "image_size": (img.shape[1], img.shape[0]), "input_size": self.input_size}
        return out_img, out_kps[keep], out_boxes[keep], meta
