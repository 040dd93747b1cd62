"""Geometric transforms and normalisation shared by training and by the runtimes' preprocessing
(training-time augmentation lives in :mod:`edgepose.data.augment`).

numpy + OpenCV only (device side: never import torch here).

Conventions
-----------
* Sizes are ``(width, height)``; images are ``(H, W, C)`` arrays (BGR uint8 unless stated).
* Pixel coordinates are pixel-centre based: pixel ``(i, j)`` (column i, row j) sits at ``x = i, y = j``,
  so an image spans ``[-0.5, W - 0.5]`` and a horizontal flip maps ``x -> W - 1 - x``. This is the
  convention of ``cv2.warpAffine``, so a matrix ``M`` that maps points also maps images exactly.
* Affine matrices are ``(2, 3)`` float64 and map source (image) points to destination (crop) points.
* Keypoints are float32 ``(..., K, 3)`` rows of ``x, y, v``; a joint with ``v == 0`` is stored as
  ``(0, 0, 0)`` after any transform here.
* Boxes are ``(..., 4)`` xyxy in the same pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgepose.errors import ConfigError, InputError
from edgepose.keypoints import KeypointSchema, get_schema

Size = tuple[int, int]


def _size(output_size: Sequence[int], what: str = "output_size") -> Size:
    """Validate a ``(width, height)`` pair of positive ints."""
    try:
        w, h = (int(v) for v in output_size)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be (width, height); received {output_size!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"{what} must be positive (width, height); received {output_size!r}")
    return w, h


def _as_affine(M: np.ndarray) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.shape != (2, 3):
        raise InputError(f"affine matrix must have shape (2, 3); received {M.shape}")
    return M


def _compose(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Return the (2, 3) matrix of ``A(B(p))``."""
    out = np.empty((2, 3), dtype=np.float64)
    out[:, :2] = A[:, :2] @ B[:, :2]
    out[:, 2] = A[:, :2] @ B[:, 2] + A[:, 2]
    return out


def _hflip_matrix(width: int) -> np.ndarray:
    """Matrix of the horizontal flip ``x -> width - 1 - x`` of an image ``width`` pixels wide."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def invert_affine(M: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix (float64); InputError if it is singular."""
    M = _as_affine(M)
    A = M[:, :2]
    det = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
    if abs(det) < 1e-12:
        raise InputError(f"affine matrix is singular (det={det:g}); cannot invert {M.tolist()}")
    inv_a = np.array([[A[1, 1], -A[0, 1]], [-A[1, 0], A[0, 0]]]) / det
    return np.concatenate([inv_a, -(inv_a @ M[:, 2])[:, None]], axis=1)


def transform_points(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Apply ``M`` (2, 3) to ``points`` (..., 2); float inputs keep their dtype, others give float64."""
    pts = np.asarray(points)
    if pts.shape[-1:] != (2,):
        raise InputError(f"points must have shape (..., 2); received {pts.shape}")
    M = _as_affine(M)
    out = pts.astype(np.float64) @ M[:, :2].T + M[:, 2]
    return out.astype(pts.dtype) if np.issubdtype(pts.dtype, np.floating) else out


def box_to_center_scale(
    box_xyxy: Sequence[float] | np.ndarray, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Centre (2,) and scale (2,) = (w, h) in pixels of a box fixed to ``aspect_ratio`` = w / h.

    The short side (relative to the aspect ratio) grows so that the whole box stays inside; then both
    sides are multiplied by ``padding``. Returns float64 arrays.
    """
    box = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise InputError(f"box must be 4 finite numbers x1, y1, x2, y2; received {box_xyxy!r}")
    if aspect_ratio <= 0 or padding <= 0:
        raise ConfigError(f"aspect_ratio and padding must be > 0; received {aspect_ratio}, {padding}")
    x1, y1, x2, y2 = box
    w, h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
    if w <= 0 and h <= 0:
        raise InputError(f"box has no extent: {box.tolist()} (expected x2 > x1 or y2 > y1)")
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    center = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
    return center, np.array([w, h]) * padding


def get_affine_matrix(
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    output_size: Sequence[int],
    rot_deg: float = 0.0,
    inverse: bool = False,
    udp: bool = False,
) -> np.ndarray:
    """(2, 3) float64 matrix mapping the box (``center``, ``scale`` = (w, h) px, rotated) onto the output.

    The box centre lands on the output centre ``(W/2, H/2)`` and a box side of ``w`` pixels spans ``W``
    output pixels. ``rot_deg`` > 0 turns the image content counter-clockwise in the output (OpenCV's
    ``getRotationMatrix2D`` convention). ``udp=True`` gives the unbiased data processing variant
    (Huang et al., CVPR 2020): sizes are measured in pixel spacings, i.e. ``w`` spans ``W - 1`` and the
    centre lands on ``((W-1)/2, (H-1)/2)``. ``inverse=True`` returns the output -> image matrix.
    """
    W, H = _size(output_size)
    c = np.asarray(center, dtype=np.float64).reshape(2)
    s = np.asarray(scale, dtype=np.float64).reshape(2)
    if np.any(s <= 0):
        raise InputError(f"scale must be positive (w, h) in pixels; received {s.tolist()}")
    span = np.array([W - 1.0, H - 1.0]) if udp else np.array([float(W), float(H)])
    if np.any(span <= 0):
        raise ConfigError(f"udp needs an output size of at least 2x2; received {(W, H)}")
    t = np.deg2rad(rot_deg)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    A = np.diag(span / s) @ rot
    M = np.concatenate([A, (span / 2.0 - A @ c)[:, None]], axis=1)
    return invert_affine(M) if inverse else M


def get_udp_affine_matrix(
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    output_size: Sequence[int],
    rot_deg: float = 0.0,
    inverse: bool = False,
) -> np.ndarray:
    """``get_affine_matrix(..., udp=True)``: the unbiased (size - 1) variant."""
    return get_affine_matrix(center, scale, output_size, rot_deg, inverse=inverse, udp=True)


def warp(image: np.ndarray, M: np.ndarray, output_size: Sequence[int], border_value: float = 0) -> np.ndarray:
    """``cv2.warpAffine`` with bilinear interpolation and a constant border; output (H, W[, C]).

    OpenCV samples on a 1/32 pixel grid, so a warped image matches ``M`` to about 1/64 pixel.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"image must be a non-empty (H, W) or (H, W, C) array; received shape {img.shape}")
    W, H = _size(output_size)
    border = (border_value,) * 4 if np.isscalar(border_value) else tuple(border_value)
    return cv2.warpAffine(img, _as_affine(M), (W, H), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def affine_crop(
    image: np.ndarray,
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    output_size: Sequence[int],
    rot_deg: float = 0.0,
    border_value: float = 0,
    udp: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the (rotated) box to ``output_size``; returns ``(crop (H, W[, C]), M image->crop)``."""
    M = get_affine_matrix(center, scale, output_size, rot_deg, udp=udp)
    return warp(image, M, output_size, border_value), M


def letterbox_matrix(image_size: Sequence[int], output_size: Sequence[int]) -> np.ndarray:
    """Matrix that scales an image of ``image_size`` to fit ``output_size`` (aspect kept, centred)."""
    w, h = _size(image_size, "image_size")
    W, H = _size(output_size)
    r = min(W / w, H / h)
    # Pixel edges: [0, w] (i.e. x + 0.5) maps onto [pad, pad + r * w].
    tx = r * 0.5 - 0.5 + (W - r * w) / 2.0
    ty = r * 0.5 - 0.5 + (H - r * h) / 2.0
    return np.array([[r, 0.0, tx], [0.0, r, ty]])


def letterbox(image: np.ndarray, output_size: Sequence[int], pad_value: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """Resize keeping the aspect ratio and centre-pad to ``output_size``; returns ``(image, M)``.

    ``M`` maps original pixel coordinates to letterboxed ones; ``invert_affine(M)`` maps back.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise InputError(f"image must be (H, W) or (H, W, C); received shape {img.shape}")
    M = letterbox_matrix((img.shape[1], img.shape[0]), output_size)
    return warp(img, M, output_size, pad_value), M


def hflip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an (H, W[, C]) image left-right (a new contiguous array)."""
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise InputError(f"image must be (H, W) or (H, W, C); received shape {img.shape}")
    return np.ascontiguousarray(img[:, ::-1])


def _flip_index(schema_or_flip_index: KeypointSchema | str | Sequence[int], k: int) -> np.ndarray:
    if isinstance(schema_or_flip_index, (KeypointSchema, str)):
        idx = np.asarray(get_schema(schema_or_flip_index).flip_index())
    else:
        idx = np.asarray(schema_or_flip_index, dtype=np.int64)
    if idx.shape != (k,) or sorted(idx.tolist()) != list(range(k)):
        raise InputError(f"flip index must be a permutation of {k} joints; received {idx.tolist()}")
    return idx


def _keypoints(kps: np.ndarray, k: int | None = None, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(kps, dtype=np.float32)
    bad_ndim = arr.ndim < 2 or (ndim is not None and arr.ndim != ndim)
    if bad_ndim or arr.shape[-1] != 3 or (k is not None and arr.shape[-2] != k):
        lead = "..., " if ndim is None else ("P, " if ndim == 3 else "")
        want = f"({lead}{k if k is not None else 'K'}, 3)"
        raise InputError(f"keypoints must have shape {want}; received {arr.shape}")
    return arr


def hflip_keypoints(
    keypoints: np.ndarray, width: int, schema_or_flip_index: KeypointSchema | str | Sequence[int]
) -> np.ndarray:
    """Mirror keypoints (..., K, 3) of an image ``width`` wide: ``x' = width - 1 - x``, paired joints swap.

    Joints with ``v == 0`` come out as ``(0, 0, 0)``. Flipping twice gives the input back (for
    inputs that already store invisible joints as zeros).
    """
    kps = _keypoints(keypoints)
    out = kps[..., _flip_index(schema_or_flip_index, kps.shape[-2]), :].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    out[out[..., 2] <= 0] = 0.0
    return out


def map_keypoints(
    keypoints: np.ndarray, M: np.ndarray, output_size: Sequence[int], flip_index: np.ndarray | None = None
) -> np.ndarray:
    """Map keypoints (..., K, 3) through ``M``; joints outside ``[0, W-1] x [0, H-1]`` get v = 0.

    ``flip_index`` (K,) permutes joints afterwards (when ``M`` contains a horizontal flip).
    """
    kps = _keypoints(keypoints)
    W, H = _size(output_size)
    out = kps.copy()
    out[..., :2] = transform_points(kps[..., :2], M)
    x, y = out[..., 0], out[..., 1]
    inside = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    out[~inside | (out[..., 2] <= 0)] = 0.0
    if flip_index is not None:
        out = out[..., flip_index, :]
    return np.ascontiguousarray(out, dtype=np.float32)


def normalize(
    image_bgr: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    to_rgb: bool = True,
    layout: str = "NCHW",
) -> np.ndarray:
    """``(image / 255 - mean) / std`` as float32: ``mean`` / ``std`` act on pixel values scaled to [0, 1].

    ``image_bgr``: (H, W, 3) or (N, H, W, 3) BGR (uint8 or float in 0..255). ``mean`` and ``std`` are
    given in the output channel order (RGB when ``to_rgb``), e.g. ImageNet (0.485, 0.456, 0.406).
    ``layout="NCHW"`` gives (3, H, W) / (N, 3, H, W);
    ``"NHWC"`` keeps the channels last. The result is C-contiguous.
    """
    img = np.asarray(image_bgr)
    if img.ndim not in (3, 4) or img.shape[-1] != 3:
        raise InputError(f"image must be (H, W, 3) or (N, H, W, 3); received shape {img.shape}")
    if layout not in ("NCHW", "NHWC"):
        raise ConfigError(f"layout must be 'NCHW' or 'NHWC'; received {layout!r}")
    m = np.asarray(mean, dtype=np.float32).reshape(-1)
    s = np.asarray(std, dtype=np.float32).reshape(-1)
    if m.shape != (3,) or s.shape != (3,) or np.any(s <= 0):
        raise ConfigError(f"mean and std must be 3 values (std > 0); received {mean!r}, {std!r}")
    # One pass over strided views (colour flip, channel move) into a contiguous float32 result; the same
    # float32 arithmetic as (x - 255 m) * (1 / (255 s)) — per frame on the device, so it is kept cheap.
    x = img[..., ::-1] if to_rgb else img
    shape = (3,)
    if layout == "NCHW":
        x = np.moveaxis(x, -1, -3)
        shape = (3, 1, 1)
    out = np.empty(x.shape, np.float32)
    np.subtract(x, (m * 255.0).reshape(shape), out=out, dtype=np.float32)
    out *= (1.0 / (s * 255.0)).reshape(shape)
    return out
