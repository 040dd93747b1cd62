"""Turn a BGR image (and person boxes) into the network's input batch, and map results back.

Top-down: one affine crop per box (aspect ratio fixed to the model's, 1.25 padding), batched.
Bottom-up: the whole frame letterboxed into the input size. The same functions serve training-time
evaluation, every runtime and calibration, so preprocessing never drifts between them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from edgepose.data.transforms import (
    affine_crop,
    box_to_center_scale,
    invert_affine,
    letterbox,
    normalize,
    transform_points,
)
from edgepose.errors import ConfigError, InputError
from edgepose.utils.numbers import is_number

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class InputSpec:
    """What the network expects. ``size`` is (width, height); mean/std act on RGB in [0, 1]."""

    size: tuple[int, int]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    layout: str = "NCHW"
    to_rgb: bool = True
    padding: float = 1.25
    dtype: str = "float32"  # "uint8": raw 0..255 pixels (e.g. full-INT8 TFLite models such as MoveNet)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        size = tuple(self.size)
        if len(size) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                                      for v in size):
            raise ConfigError(f"input size must be (width, height) positive integers, got {self.size!r}")
        self.size = (int(size[0]), int(size[1]))
        for name in ("mean", "std"):
            v = getattr(self, name)
            ok = isinstance(v, (tuple, list, np.ndarray)) and len(v) in (1, 3) and all(
                is_number(x) for x in v)
            if not ok or (name == "std" and min(v) <= 0):
                raise ConfigError(f"input {name} must be 1 or 3 finite numbers{' > 0' if name == 'std' else ''} "
                                  f"(RGB, 0..1 scale), got {v!r}")
        if self.layout not in ("NCHW", "NHWC"):
            raise ConfigError(f"input layout must be 'NCHW' or 'NHWC', got {self.layout!r}")
        if self.dtype not in ("float32", "uint8"):
            raise ConfigError(f"input dtype must be 'float32' or 'uint8', got {self.dtype!r}")
        if not is_number(self.padding) or self.padding <= 0:
            raise ConfigError(f"input padding (box scale) must be a finite number > 0, got {self.padding!r}")


def check_image(image) -> np.ndarray:
    """Accept only BGR uint8 (H, W, 3); one-line errors for everything else."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array (BGR uint8, H x W x 3), got {type(image).__name__}")
    if image.size == 0:
        raise InputError(f"image is empty (shape {image.shape}); expected BGR uint8 (H, W, 3)")
    if image.dtype != np.uint8:
        raise InputError(f"image dtype is {image.dtype}, expected uint8 BGR (H, W, 3); "
                         "scale 16-bit or float images to 0..255 uint8 first")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise InputError(f"image is grayscale {image.shape}, expected BGR (H, W, 3); "
                         "use cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)")
    if image.ndim != 3 or image.shape[2] != 3:
        hint = "; use cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)" if image.ndim == 3 and image.shape[2] == 4 else ""
        raise InputError(f"image has shape {image.shape}, expected BGR (H, W, 3){hint}")
    return image


# a box this many times the image's size is a unit mix-up (normalised vs pixels, say), not a person
MAX_BOX_SCALE = 100


def usable_boxes(boxes: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """(N,) bool: xyxy boxes a crop can use — finite, positive size, overlapping the image (the rules
    :func:`check_boxes` enforces one box at a time); for callers that drop the others (detector output, ground
    truth) instead of refusing them."""
    h, w = image_shape[:2]
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        return (np.isfinite(b).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]) & (b[:, 2] > 0)
                & (b[:, 3] > 0) & (b[:, 0] < w) & (b[:, 1] < h))


def check_boxes(boxes, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """Person boxes → ((N, 4) xyxy float32 boxes that overlap the image and have positive size, (N,) detector
    scores or None). Takes (N, 4) xyxy or (N, 5) xyxy + score, as an array or nested lists; one box may be flat;
    an empty list / array is no boxes."""
    h, w = image_shape[:2]
    try:
        arr = np.asarray(boxes, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(f"boxes must be numbers, (N, 4) xyxy or (N, 5) xyxy + score, got {boxes!r:.80}") from None
    if arr.size == 0:
        return np.zeros((0, 4), np.float32), None
    if arr.ndim == 1 and arr.shape[0] in (4, 5):
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise InputError(f"boxes must be (N, 4) xyxy or (N, 5) xyxy + score, got shape {arr.shape}")
    scores = arr[:, 4].copy() if arr.shape[1] == 5 else None
    arr = np.ascontiguousarray(arr[:, :4])
    if not np.isfinite(arr).all() or (scores is not None and not np.isfinite(scores).all()):
        raise InputError(f"boxes contain NaN or infinite values ({arr.tolist()}); "
                         "expected finite xyxy pixel coordinates")
    for i, (x0, y0, x1, y1) in enumerate(arr):
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"box {i} {[float(v) for v in arr[i]]} has no area; expected x1 > x0 and y1 > y0")
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise InputError(f"box {i} {[float(v) for v in arr[i]]} lies outside the {w}x{h} image")
        if max(x1 - x0, y1 - y0) > MAX_BOX_SCALE * max(w, h):
            raise InputError(f"box {i} {[float(v) for v in arr[i]]} is over {MAX_BOX_SCALE}x the {w}x{h} image; "
                             "expected a person box in image pixels")
    return arr, scores


def swap_rb(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 BGR ↔ RGB, contiguous. OpenCV's channel swap: numpy's copy of a reversed 3-wide last
    axis takes ~40x longer (0.13 against 0.004 ms on a 192² crop)."""
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != 3 or images.size == 0:
        return np.ascontiguousarray(images[..., ::-1])
    src = np.ascontiguousarray(images)
    return cv2.cvtColor(src.reshape(-1, *src.shape[-2:]), cv2.COLOR_BGR2RGB).reshape(src.shape)


@lru_cache(maxsize=32)
def _pixel_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(1, 256, 3) float32: what :func:`normalize` makes of pixel value p in output channel c, computed by
    ``normalize`` itself (elementwise float32 arithmetic, so a lookup gives the same bits)."""
    pixels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)[None, :, None, :]
    table = normalize(pixels, mean, std, to_rgb=False, layout="NHWC").reshape(1, 256, 3)
    table.setflags(write=False)
    return table


def pixel_table(spec: InputSpec) -> np.ndarray:
    """(1, 256, 3) float32 lookup table: uint8 pixel value → network input value, per channel in the network's
    colour order (``spec``'s mean / std; for ``cv2.LUT`` on channel-last images already in that order)."""
    return _pixel_table(tuple(float(v) for v in spec.mean), tuple(float(v) for v in spec.std))


def lookup(images: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[p, c]`` for every pixel value p of channel c of (N, H, W, 3) uint8 ``images`` (``cv2.LUT`` with a
    (1, 256, 3) float32 table; 0.07 ms per 192² crop where :func:`normalize` on channel-last takes 0.5)."""
    src = np.ascontiguousarray(images)
    if src.size == 0:
        return np.zeros(src.shape, table.dtype)
    return cv2.LUT(src.reshape(-1, *src.shape[-2:]), table).reshape(src.shape)


def to_tensor(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(N, H, W, 3) BGR uint8 → the network's input tensor (layout, colour order, dtype of ``spec``)."""
    images = np.asarray(images)
    if spec.dtype == "uint8":
        out = swap_rb(images) if spec.to_rgb else images
        out = out if spec.layout == "NHWC" else out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out)
    if spec.layout == "NHWC" and images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] == 3:
        # channel-last float: a table lookup (same values as normalize, ~7x faster there)
        return lookup(swap_rb(images) if spec.to_rgb else images, pixel_table(spec))
    batch = normalize(images, spec.mean, spec.std, to_rgb=spec.to_rgb, layout=spec.layout)
    return np.ascontiguousarray(batch, dtype=np.float32)


def topdown_crops(image: np.ndarray, boxes: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """One affine crop per box → (crops (N, H, W, 3) BGR uint8, forward matrices (N, 2, 3))."""
    crops, mats = [], []
    aspect = spec.size[0] / spec.size[1]
    for box in boxes:
        center, scale = box_to_center_scale(box, aspect, padding=spec.padding)
        crop, m = affine_crop(image, center, scale, spec.size)
        crops.append(crop)
        mats.append(m)
    if not crops:
        return np.zeros((0, spec.size[1], spec.size[0], 3), np.uint8), np.zeros((0, 2, 3))
    return np.stack(crops), np.stack(mats)


def topdown_batch(image: np.ndarray, boxes: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Crops for every box → (batch (N, 3, H, W) or (N, H, W, 3) float32, forward matrices (N, 2, 3))."""
    crops, mats = topdown_crops(image, boxes, spec)
    return to_tensor(crops, spec), mats


def bottomup_crops(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """The whole frame letterboxed → (frames (1, H, W, 3) BGR uint8, forward matrix (1, 2, 3))."""
    padded, m = letterbox(image, spec.size)
    return padded[None], np.asarray(m, np.float64)[None]


def bottomup_batch(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox the whole frame → (batch (1, ...) float32, forward matrix (1, 2, 3))."""
    frames, mats = bottomup_crops(image, spec)
    return to_tensor(frames, spec), mats


def map_back(keypoints: np.ndarray, mats: np.ndarray) -> np.ndarray:
    """keypoints (N, ..., 3) in input pixels, mats (N, 2, 3) forward → keypoints in image pixels."""
    out = keypoints.astype(np.float32, copy=True)
    for i in range(out.shape[0]):
        inv = invert_affine(mats[i])
        out[i, ..., :2] = transform_points(out[i, ..., :2], inv)
    return out
