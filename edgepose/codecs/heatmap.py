"""Heatmap codec for top-down models: Gaussian targets and three decoders (MSRA argmax, DARK, UDP).

Device side: numpy and OpenCV only (never torch).

Shapes: N instances (crops), K keypoints, heatmaps (K, H, W) or (N, K, H, W) with (W, H) = ``heatmap_size``.
Keypoints are float32 (..., K, 3): x, y, v (encode input; v > 0 means labelled) or x, y, score (decode
output), always in **input-tensor pixels** of a crop of size ``input_size`` = (W_in, H_in).

Coordinate maps between input pixels and heatmap pixels:

* ``argmax`` and ``dark`` (MSRA convention): ``x_hm = x * W_hm / W_in`` (and the same for y).
* ``udp`` (Huang et al., "The Devil is in the Details: Delving into Unbiased Data Processing for Human
  Pose Estimation"): ``x_hm = x * (W_hm - 1) / (W_in - 1)``, so the first and last pixel centres of the
  input and of the heatmap coincide.

Decoders:

* ``argmax``: integer argmax, then a quarter-pixel shift towards the higher of the two neighbours on
  each axis (the sign of their difference); no shift on the border.
* ``dark`` (Zhang et al., "Distribution-Aware Coordinate Representation for Human Pose Estimation"):
  blur the heatmap with a Gaussian kernel (keeping its maximum), take the log, and move the argmax by the
  second-order Taylor step ``-H^-1 g`` (gradient g and Hessian H by central differences).
* ``udp``: the same refinement as ``dark`` with the UDP coordinate map.

The score of a joint is the maximum of the (unblurred) heatmap. With ``peak_margin`` > 0 it is lowered where
the peak is not distinct: ``gap`` = (maximum − the largest value outside the (2r+1)² window around it, r =
:data:`PEAK_RADIUS` cells) / |maximum|, and the score is multiplied by ``min(1, gap / peak_margin)``. A flat map
with two near-equal maxima — whose argmax one grey level of input noise can move across the crop — then gets a
score near 0 instead of presenting a coin toss as a position (see docs/benchmarks.md, "Weak joints").
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from edgepose.codecs.base import Codec
from edgepose.codecs.dark import ANISOTROPY, dark_window
from edgepose.codecs.dark import LOG_FLOOR as _LOG_FLOOR
from edgepose.codecs.dark import MAX_STEP as _MAX_TAYLOR_STEP
from edgepose.errors import ConfigError, InputError, suggest

METHODS = ("argmax", "dark", "udp")
PEAK_RADIUS = 1  # heatmap cells around the maximum that belong to its own peak
PEAK_MARGIN = 0.2  # the zoo's heatmap models: a second peak within 20 % of the first lowers the score


def peak_distinctness(heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray, score: np.ndarray,
                      margin: float) -> np.ndarray:
    """(M, H, W) maps with maxima ``score`` at (x, y) → (M,) factors in [0, 1]: min(1, gap / margin), gap being
    the relative drop from the maximum to the best value outside its (2r+1)² window (1 when none is outside)."""
    m, h, w = heatmaps.shape
    near = (np.abs(np.arange(h)[None, :, None] - y[:, None, None]) <= PEAK_RADIUS) & \
           (np.abs(np.arange(w)[None, None, :] - x[:, None, None]) <= PEAK_RADIUS)
    second = np.where(near, -np.inf, heatmaps).reshape(m, h * w).max(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        gap = (score.astype(np.float64) - second) / np.maximum(np.abs(score), 1e-6)
    return np.clip(np.nan_to_num(gap / margin, nan=0.0), 0.0, 1.0)


def _as_size(value: Any, what: str) -> tuple[int, int]:
    """Validate a (width, height) pair of positive ints."""
    try:
        w, h = (int(v) for v in value)
        ok = w > 0 and h > 0 and all(float(v) == int(v) for v in value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"{what} must be (width, height) positive integers, got {value!r}")
    return w, h


def _pad_log_quadratic(log_map: np.ndarray, pad: int, axis: int) -> np.ndarray:
    """Pad a log-heatmap by ``pad`` cells on both ends of ``axis`` by quadratic extrapolation through the
    three outermost values, capped at the edge value (exact for a Gaussian whose centre is inside)."""
    lm = np.moveaxis(log_map, axis, 0)
    if lm.shape[0] < 3:
        return np.pad(log_map, [(pad, pad) if a == axis else (0, 0) for a in range(log_map.ndim)], mode="edge")
    t = -np.arange(pad, 0, -1, dtype=np.float64).reshape((-1,) + (1,) * (lm.ndim - 1))  # -pad .. -1

    def extend(l0: np.ndarray, l1: np.ndarray, l2: np.ndarray) -> np.ndarray:
        slope, curv = (-3 * l0 + 4 * l1 - l2) / 2, (l0 - 2 * l1 + l2) / 2
        return np.minimum(l0 + t * slope + t * t * curv, l0)

    before = extend(lm[0], lm[1], lm[2])
    after = extend(lm[-1], lm[-2], lm[-3])[::-1]
    return np.moveaxis(np.concatenate([before, lm, after], axis=0), 0, axis)


def blurred_log_heatmap(heatmap: np.ndarray, kernel: int) -> np.ndarray:
    """DARK modulation of one (H, W) map: Gaussian blur of size ``kernel`` (OpenCV sigma from the size),
    rescaled to keep the original maximum, then the log (floored at 1e-10).

    Returns float64 (H + 2, W + 2): one extra ring so that derivatives exist on the border. The map is
    padded by quadratic extrapolation of its log (instead of a reflect / zero border) before blurring, so a
    Gaussian near or on the edge stays a Gaussian and the Taylor step stays unbiased.
    """
    return blurred_log_heatmaps(heatmap[None], kernel)[0]


_CV_MAX_CHANNELS = 128  # channels per image OpenCV's filters take (128 in OpenCV 5, 512 in 4)


def blurred_log_heatmaps(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """:func:`blurred_log_heatmap` of a stack (M, H, W) → (M, H + 2, W + 2), the maps blurred as the channels
    of one image (one OpenCV call per 128 maps instead of a Python loop over them)."""
    m, h, w = heatmaps.shape
    pad = kernel // 2 + 1
    log_map = np.log(np.maximum(heatmaps.astype(np.float64), _LOG_FLOOR))
    padded = np.exp(_pad_log_quadratic(_pad_log_quadratic(log_map, pad, 2), pad, 1))
    hwc = np.ascontiguousarray(padded.transpose(1, 2, 0))
    chunks = (np.ascontiguousarray(hwc[..., i:i + _CV_MAX_CHANNELS]) for i in range(0, m, _CV_MAX_CHANNELS))
    blurred = np.concatenate([cv2.GaussianBlur(c, (kernel, kernel), 0).reshape(c.shape) for c in chunks], axis=2)
    blurred = blurred.transpose(2, 0, 1)[:, pad - 1:pad + h + 1, pad - 1:pad + w + 1]
    orig_max = heatmaps.reshape(m, -1).max(axis=1).astype(np.float64)
    new_max = blurred[:, 1:-1, 1:-1].reshape(m, -1).max(axis=1)
    ratio = np.where((new_max > 0) & (orig_max > 0), orig_max / np.where(new_max > 0, new_max, 1.0), 1.0)
    return np.log(np.maximum(blurred * ratio[:, None, None], _LOG_FLOOR))


def argmax_2d(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, H, W) → integer x (M,), integer y (M,), max value (M,). Ties resolve to the first flat index."""
    m, h, w = heatmaps.shape
    flat = heatmaps.reshape(m, h * w)
    idx = flat.argmax(axis=1)
    return idx % w, idx // w, flat[np.arange(m), idx]


def quarter_offset(heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MSRA refinement: (M, 2) shift of ±0.25 px towards the higher neighbour (0 on the border or a tie)."""
    m, h, w = heatmaps.shape
    rows = np.arange(m)
    out = np.zeros((m, 2), dtype=np.float32)
    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    xl, xr = np.clip(x - 1, 0, w - 1), np.clip(x + 1, 0, w - 1)
    yu, yd = np.clip(y - 1, 0, h - 1), np.clip(y + 1, 0, h - 1)
    dx = heatmaps[rows, y, xr] - heatmaps[rows, y, xl]
    dy = heatmaps[rows, yd, x] - heatmaps[rows, yu, x]
    out[:, 0] = np.where(inner_x, 0.25 * np.sign(dx), 0.0)
    out[:, 1] = np.where(inner_y, 0.25 * np.sign(dy), 0.0)
    return out


def taylor_offset(heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray, kernel: int) -> np.ndarray:
    """DARK refinement: (M, 2) sub-pixel step ``-H^-1 g`` on the log of the blurred maps at (x, y).

    Maps whose maximum is not positive, flat neighbourhoods (singular Hessian), ridges, saddles and steps
    longer than one pixel give a zero step, so all-zero, negative and border maxima never produce NaN.
    Computed on a window around each argmax (:mod:`edgepose.codecs.dark`); :func:`taylor_offset_reference`
    is the same step on whole maps.
    """
    m, h, w = heatmaps.shape
    flat = heatmaps.reshape(m, h * w)
    return dark_window(w, h, kernel).step(flat, np.asarray(x), np.asarray(y), flat.max(axis=1))


def taylor_offset_reference(heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray, kernel: int) -> np.ndarray:
    """:func:`taylor_offset` on whole maps (:func:`blurred_log_heatmaps`): the definition it is tested against."""
    m = heatmaps.shape[0]
    logs = blurred_log_heatmaps(heatmaps, kernel)
    rows, cx, cy = np.arange(m), x + 1, y + 1

    def at(ddx: int, ddy: int) -> np.ndarray:
        return logs[rows, cy + ddy, cx + ddx]

    centre = at(0, 0)
    gx = 0.5 * (at(1, 0) - at(-1, 0))
    gy = 0.5 * (at(0, 1) - at(0, -1))
    hxx = at(1, 0) - 2 * centre + at(-1, 0)
    hyy = at(0, 1) - 2 * centre + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy * hxy
    # A maximum needs a negative-definite Hessian: hxx < 0 and det > 0, clearly (see dark.ANISOTROPY).
    ok = (det > 1e-12) & (det > ANISOTROPY * (hxx * hxx + hyy * hyy)) & (hxx < 0)
    ok &= heatmaps.reshape(m, -1).max(axis=1) > 0
    safe = np.where(ok, det, 1.0)
    step_x = -(hyy * gx - hxy * gy) / safe
    step_y = -(hxx * gy - hxy * gx) / safe
    ok &= (np.abs(step_x) <= _MAX_TAYLOR_STEP) & (np.abs(step_y) <= _MAX_TAYLOR_STEP)
    return np.stack([np.where(ok, step_x, 0.0), np.where(ok, step_y, 0.0)], axis=1).astype(np.float32)


class HeatmapCodec(Codec):
    """Encode keypoints to Gaussian heatmaps and decode heatmaps back to keypoints (input pixels).

    Args:
        input_size: (W_in, H_in) of the model input crop.
        heatmap_size: (W_hm, H_hm) of the model output; W_in / W_hm must equal H_in / H_hm (the stride).
        sigma: Gaussian standard deviation of the targets, in heatmap pixels.
        method: "argmax" (MSRA quarter offset), "dark" or "udp"; sets both the coordinate map and decoder.
        blur_kernel: odd size of the Gaussian blur used by the DARK / UDP refinement.
        peak_margin: lower the score of joints whose peak is not distinct (module docstring); 0 = off.
    """

    kind: ClassVar[str] = "heatmap"

    def __init__(self, input_size: tuple[int, int] = (192, 256), heatmap_size: tuple[int, int] = (48, 64),
                 sigma: float = 2.0, method: str = "argmax", blur_kernel: int = 11, peak_margin: float = 0.0) -> None:
        self.input_size = _as_size(input_size, "input_size")
        self.heatmap_size = _as_size(heatmap_size, "heatmap_size")
        if method not in METHODS:
            raise suggest(str(method), METHODS, "heatmap decode method")
        if not isinstance(sigma, (int, float)) or not sigma > 0:
            raise ConfigError(f"sigma must be a positive number of heatmap pixels, got {sigma!r}")
        if not isinstance(blur_kernel, int) or blur_kernel < 1 or blur_kernel % 2 == 0:
            raise ConfigError(f"blur_kernel must be an odd positive int, got {blur_kernel!r}")
        (wi, hi), (wh, hh) = self.input_size, self.heatmap_size
        if abs(wi / wh - hi / hh) > 1e-6:
            raise ConfigError(f"input_size {self.input_size} and heatmap_size {self.heatmap_size} have "
                              f"different strides ({wi / wh:g} vs {hi / hh:g}); expected one stride")
        if method == "udp" and (min(wh, hh) < 2 or min(wi, hi) < 2):
            raise ConfigError(f"udp needs sizes of at least 2 px, got {self.input_size}, {self.heatmap_size}")
        if isinstance(peak_margin, bool) or not isinstance(peak_margin, (int, float)) or not 0 <= peak_margin <= 1:
            raise ConfigError(f"peak_margin must be a number in [0, 1] (0 = off), got {peak_margin!r}")
        self.sigma = float(sigma)
        self.peak_margin = float(peak_margin)
        self.method = method
        self.blur_kernel = blur_kernel

    # ----------------------------------------------------------------------------------------- params
    @property
    def stride(self) -> float:
        """Input pixels per heatmap pixel (W_in / W_hm)."""
        return self.input_size[0] / self.heatmap_size[0]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy) with x_hm = x_in * sx for this codec's coordinate map."""
        (wi, hi), (wh, hh) = self.input_size, self.heatmap_size
        if self.method == "udp":
            return (wh - 1) / (wi - 1), (hh - 1) / (hi - 1)
        return wh / wi, hh / hi

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable parameters (for bundle manifests)."""
        d = {"kind": self.kind, "input_size": list(self.input_size), "heatmap_size": list(self.heatmap_size),
             "sigma": self.sigma, "method": self.method, "blur_kernel": self.blur_kernel}
        if self.peak_margin:  # absent = off: manifests written before it existed decode as they did
            d["peak_margin"] = self.peak_margin
        return d

    # ----------------------------------------------------------------------------------------- encode
    def encode(self, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, 3) or (N, K, 3) keypoints in input pixels → heatmaps (K, H, W), target_weight (K,), float32.

        Each labelled joint (v > 0) gets a Gaussian of ``sigma`` centred at its exact (float) heatmap
        coordinate; several instances merge by maximum. A joint gets weight 1 when it is labelled in at
        least one instance and that Gaussian's 3-sigma square overlaps the map, else weight 0 (and no
        Gaussian is drawn).
        """
        kpts = np.asarray(keypoints, dtype=np.float64)
        if kpts.ndim == 2:
            kpts = kpts[None]
        if kpts.ndim != 3 or kpts.shape[-1] != 3:
            raise InputError(f"encode expects keypoints (K, 3) or (N, K, 3), got shape {np.shape(keypoints)}")
        k = kpts.shape[1]
        w, h = self.heatmap_size
        sx, sy = self.scale
        mx, my = kpts[..., 0] * sx, kpts[..., 1] * sy  # (N, K) heatmap coordinates
        reach = 3.0 * self.sigma
        inside = (mx + reach >= 0) & (mx - reach <= w - 1) & (my + reach >= 0) & (my - reach <= h - 1)
        use = (kpts[..., 2] > 0) & inside & np.isfinite(mx) & np.isfinite(my)
        xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
        heatmaps = np.zeros((k, h, w), dtype=np.float32)
        for i, j in zip(*np.nonzero(use)):
            gx = np.exp(-((xs - mx[i, j]) ** 2) / (2 * self.sigma**2))
            gy = np.exp(-((ys - my[i, j]) ** 2) / (2 * self.sigma**2))
            np.maximum(heatmaps[j], np.outer(gy, gx).astype(np.float32), out=heatmaps[j])
        return heatmaps, use.any(axis=0).astype(np.float32)

    # ----------------------------------------------------------------------------------------- decode
    def decode(self, heatmaps: np.ndarray) -> np.ndarray:
        """(K, H, W) or (N, K, H, W) heatmaps → keypoints (N, K, 3) float32: x, y in input pixels, score.

        The score is the maximum of the raw heatmap (may be ≤ 0 for empty maps; coordinates stay finite).
        """
        hm = np.asarray(heatmaps, dtype=np.float32)
        if hm.ndim == 3:
            hm = hm[None]
        w, h = self.heatmap_size
        if hm.ndim != 4 or hm.shape[2:] != (h, w):
            raise InputError(f"decode expects heatmaps (K, {h}, {w}) or (N, K, {h}, {w}) (heatmap_size "
                             f"{self.heatmap_size}), got shape {np.shape(heatmaps)}")
        n, k = hm.shape[:2]
        flat = hm.reshape(n * k, h, w)
        x, y, score = argmax_2d(flat)
        # NaN / ±inf decode as 0 (nan_to_num). A NaN or +inf shows in the maxima; below a positive maximum a
        # -inf, read as 0, moves neither the argmax nor the DARK step (its log floor treats both alike), so
        # the copy (~10 µs a frame) is made only when a maximum is not finite and positive
        if self.method == "argmax" or not (np.isfinite(score) & (score > 0)).all():
            flat = np.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
            x, y, score = argmax_2d(flat)
        if self.method == "argmax":
            step = quarter_offset(flat, x, y)
        else:  # taylor_offset, with the maxima argmax_2d already found
            step = dark_window(w, h, self.blur_kernel).step(flat.reshape(n * k, h * w), x, y, score)
        sx, sy = self.scale
        out = np.empty((n * k, 3), dtype=np.float32)
        out[:, 0] = (x + step[:, 0]) / sx
        out[:, 1] = (y + step[:, 1]) / sy
        out[:, 2] = score
        if self.peak_margin:
            out[:, 2] *= peak_distinctness(flat, x, y, score, self.peak_margin)
        return out.reshape(n, k, 3)
