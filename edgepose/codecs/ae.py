"""Associative-embedding codec for HigherHRNet-style bottom-up models (Newell et al., "Associative Embedding",
2017; Cheng et al., "HigherHRNet", 2020): per-joint heatmaps at 1/4 and 1/2 of the input, per-joint tags at 1/4.

Device side: numpy only (scipy lazily, for the grouping's optimal assignment). The candidate extraction (heatmap
aggregation, peak NMS, top-M, sub-pixel refinement, tag lookup) is repeated in torch by
``edgepose.codecs.graph_ae.AEDecode``, which ends an exported graph with two outputs, ``peaks`` and
``peak_tags``; the grouping then runs here on the host (:meth:`AECodec.group`) whatever the placement.

Shapes: N images, K keypoints, D tag dimensions, M candidates per joint (``max_people``), P person slots
(``max_people``); low-resolution maps (Hq, Wq) = input / ``stride``, high-resolution maps (Hh, Wh) = input /
(``stride`` / 2).
Coordinates: pixel centres align across resolutions: input px x ↔ feature px f = (x + 0.5) / s - 0.5 at stride
s, so a bilinear (half-pixel) x2 resize of a 1/4 map lines up with the 1/2 map.

Raw model outputs, in this order (a tuple, or a dict with these names), each (N, C, H, W) or (C, H, W):

===============  =====  =======================================================================================
name             C      meaning
===============  =====  =======================================================================================
heatmaps         K      joint heatmaps at 1/4 (MSE-regressed Gaussians, peak 1)
tags             K * D  joint tags at 1/4 (channel k * D + d)
heatmaps_hr      K      joint heatmaps at 1/2
===============  =====  =======================================================================================

Decode: average the x2-upsampled 1/4 heatmaps with the 1/2 ones; keep cells equal to their ``nms_kernel``
neighbourhood maximum; the top M per joint (ties to the lower flat index); sub-pixel position from a parabola
through each peak and its two neighbours per axis; each candidate's tag read at its 1/4 cell. Grouping, joint by
joint: candidates above ``detection_threshold`` are matched to the people found so far by
``round(tag distance) * 100 - heatmap value`` with optimal assignment; a match farther than ``tag_threshold``
starts a new person. Refinement: a person's missing joint takes the candidate with the best heatmap value minus
tag distance to the person's mean tag, its score scaled by (1 - distance / ``tag_threshold``), floored at 0.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from edgepose.codecs.base import Codec, split_named_outputs
from edgepose.codecs.heatmap import _as_size
from edgepose.errors import ConfigError, InputError

OUTPUT_NAMES = ("heatmaps", "tags", "heatmaps_hr")
PEAK_NAMES = ("peaks", "peak_tags")
NEG_FILL = -1e30  # rank of non-peak cells
BIG_COST = 1e10


def _scipy_assignment():
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        raise ConfigError("associative-embedding grouping needs scipy: pip install 'edgepose[grouping]' "
                          "(or pip install scipy)") from None
    return linear_sum_assignment


def upsample2(maps: np.ndarray) -> np.ndarray:
    """(..., H, W) → (..., 2H, 2W) bilinear resize, half-pixel centres, edges clamped (PyTorch's
    ``interpolate(scale_factor=2, mode='bilinear', align_corners=False)``, ONNX Resize, TFLite RESIZE_BILINEAR)."""
    a = np.asarray(maps, np.float32)
    h, w = a.shape[-2:]
    rows = np.empty((*a.shape[:-2], 2 * h, w), np.float32)
    rows[..., 0::2, :] = 0.75 * a + 0.25 * a[..., np.r_[0, 0:h - 1], :]
    rows[..., 1::2, :] = 0.75 * a + 0.25 * a[..., np.r_[1:h, h - 1], :]
    out = np.empty((*a.shape[:-2], 2 * h, 2 * w), np.float32)
    out[..., 0::2] = 0.75 * rows + 0.25 * rows[..., np.r_[0, 0:w - 1]]
    out[..., 1::2] = 0.75 * rows + 0.25 * rows[..., np.r_[1:w, w - 1]]
    return out


def top_peaks(flat: np.ndarray, keep: np.ndarray, m: int) -> np.ndarray:
    """(N, K, L) values and peak mask → flat indices (N, K, m) of the m best peaks, best first, ties to the lower
    index, then the lowest-index non-peak cells (what TopK over the masked ranks gives)."""
    n, k, length = flat.shape
    out = np.empty((n, k, m), np.int64)
    for i in range(n):
        for j in range(k):
            cells = np.flatnonzero(keep[i, j])
            best = cells[np.lexsort((cells, -flat[i, j, cells]))][:m]
            if len(best) < m:
                rest = np.flatnonzero(~keep[i, j, :length])[:m - len(best)]
                best = np.concatenate([best, rest])
            out[i, j] = best
    return out


def peak_mask(maps: np.ndarray, kernel: int) -> np.ndarray:
    """(..., H, W) → bool mask of cells equal to their kernel x kernel maximum (max-pool NMS, -inf pad)."""
    h, w = maps.shape[-2:]
    r = kernel // 2
    padded = np.pad(maps, [(0, 0)] * (maps.ndim - 2) + [(r, r), (r, r)], constant_values=-np.inf)
    rows = padded[..., 0:h, :].copy()
    for dy in range(1, kernel):
        np.maximum(rows, padded[..., dy:dy + h, :], out=rows)
    pooled = rows[..., 0:w].copy()
    for dx in range(1, kernel):
        np.maximum(pooled, rows[..., dx:dx + w], out=pooled)
    return maps == pooled


def draw_gaussian(target: np.ndarray, fx: float, fy: float, sigma: float) -> None:
    """Max-merge a peak-1 Gaussian of ``sigma`` centred on feature px (fx, fy) into (H, W) ``target``."""
    h, w = target.shape
    r = math.ceil(3 * sigma)
    cx, cy = int(round(fx)), int(round(fy))
    x0, x1, y0, y1 = max(cx - r, 0), min(cx + r + 1, w), max(cy - r, 0), min(cy + r + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    gx = np.exp(-((np.arange(x0, x1) - fx) ** 2) / (2 * sigma * sigma))
    gy = np.exp(-((np.arange(y0, y1) - fy) ** 2) / (2 * sigma * sigma))
    np.maximum(target[y0:y1, x0:x1], np.outer(gy, gx).astype(np.float32), out=target[y0:y1, x0:x1])


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return value


class AECodec(Codec):
    """Encode people into HigherHRNet targets; decode raw outputs (or in-graph candidates) into people.

    Args:
        input_size: (W, H) of the model input, both divisible by ``stride``.
        num_keypoints: K.
        sigma: Gaussian sigma of the heatmap targets, in each map's own px (the same at both resolutions).
        tag_dim: D, tag dimensions per joint.
        stride: input px per low-resolution cell (even; the high-resolution maps have half of it).
        max_people: M candidates per joint and P person slots decode returns (sorted by score, zero-padded).
        nms_kernel: odd max-pool window of the peak NMS on the aggregated 1/2 heatmaps.
        detection_threshold: heatmap value a candidate needs to be grouped.
        tag_threshold: tag distance beyond which a candidate starts a new person (and refinement ignores it).
        refine: fill each person's missing joints (see the module docstring).
    """

    kind: ClassVar[str] = "ae"

    def __init__(self, input_size: tuple[int, int] = (256, 256), num_keypoints: int = 17, sigma: float = 2.0,
                 tag_dim: int = 1, stride: int = 4, max_people: int = 30, nms_kernel: int = 5,
                 detection_threshold: float = 0.1, tag_threshold: float = 1.0, refine: bool = True) -> None:
        self.input_size = _as_size(input_size, "input_size")
        self.num_keypoints = _positive_int("num_keypoints", num_keypoints)
        self.tag_dim = _positive_int("tag_dim", tag_dim)
        self.stride = _positive_int("stride", stride)
        self.max_people = _positive_int("max_people", max_people)
        self.nms_kernel = _positive_int("nms_kernel", nms_kernel)
        if stride % 2:
            raise ConfigError(f"stride must be even (the high-resolution maps are at stride / 2), got {stride}")
        if self.input_size[0] % stride or self.input_size[1] % stride:
            raise ConfigError(f"input_size {self.input_size} must be divisible by stride {stride}")
        if nms_kernel % 2 == 0:
            raise ConfigError(f"nms_kernel must be odd, got {nms_kernel}")
        hw, hh = self.hr_size
        if max_people > hw * hh:
            raise ConfigError(f"max_people {max_people} exceeds the {hw}x{hh} high-resolution cells")
        if not sigma > 0 or not tag_threshold > 0 or not 0 <= detection_threshold < 1:
            raise ConfigError(f"need sigma > 0, tag_threshold > 0 and 0 <= detection_threshold < 1; got "
                              f"{sigma!r}, {tag_threshold!r}, {detection_threshold!r}")
        self.sigma, self.tag_threshold = float(sigma), float(tag_threshold)
        self.detection_threshold, self.refine = float(detection_threshold), bool(refine)

    # ----------------------------------------------------------------------------------------- params
    @property
    def feature_size(self) -> tuple[int, int]:
        """(Wq, Hq) of the low-resolution heatmaps and tags."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    @property
    def hr_size(self) -> tuple[int, int]:
        """(Wh, Hh) of the high-resolution heatmaps."""
        return 2 * self.input_size[0] // self.stride, 2 * self.input_size[1] // self.stride

    @property
    def channels(self) -> dict[str, int]:
        k = self.num_keypoints
        return {"heatmaps": k, "tags": k * self.tag_dim, "heatmaps_hr": k}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "input_size": list(self.input_size), "num_keypoints": self.num_keypoints,
                "sigma": self.sigma, "tag_dim": self.tag_dim, "stride": self.stride, "max_people": self.max_people,
                "nms_kernel": self.nms_kernel, "detection_threshold": self.detection_threshold,
                "tag_threshold": self.tag_threshold, "refine": self.refine}

    # ----------------------------------------------------------------------------------------- encode
    def encode(self, keypoints: np.ndarray, boxes: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """People → float32 targets.

        Args:
            keypoints: (P, K, 3) x, y, v in input pixels (v > 0: labelled; joints outside the input are skipped).
            boxes: (P, 4) xyxy, unused (accepted for the bottom-up dataset's call).

        Returns: ``heatmaps`` (K, Hq, Wq), ``heatmaps_hr`` (K, Hh, Wh), ``joints`` (M, K) int64 flat index of
        each person's joint in the 1/4 map (the first M people), ``joint_mask`` (M, K) 1 where labelled.
        """
        kps = np.asarray(keypoints, np.float32)
        k = self.num_keypoints
        if kps.ndim != 3 or kps.shape[1:] != (k, 3):
            raise InputError(f"ae encode expects keypoints (P, {k}, 3), got shape {kps.shape}")
        (wq, hq), (wh, hh) = self.feature_size, self.hr_size
        w, h = self.input_size
        out = {"heatmaps": np.zeros((k, hq, wq), np.float32), "heatmaps_hr": np.zeros((k, hh, wh), np.float32),
               "joints": np.zeros((self.max_people, k), np.int64),
               "joint_mask": np.zeros((self.max_people, k), np.float32)}
        x, y, v = kps[..., 0], kps[..., 1], kps[..., 2]
        with np.errstate(invalid="ignore"):
            ok = (v > 0) & np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        for name, s in (("heatmaps", self.stride), ("heatmaps_hr", self.stride // 2)):
            fx, fy = (x + 0.5) / s - 0.5, (y + 0.5) / s - 0.5
            for p, j in zip(*np.nonzero(ok)):
                draw_gaussian(out[name][j], float(fx[p, j]), float(fy[p, j]), self.sigma)
        fx, fy = (x + 0.5) / self.stride - 0.5, (y + 0.5) / self.stride - 0.5
        cx = np.clip(np.rint(np.nan_to_num(fx)), 0, wq - 1).astype(np.int64)
        cy = np.clip(np.rint(np.nan_to_num(fy)), 0, hq - 1).astype(np.int64)
        m = min(len(kps), self.max_people)
        out["joints"][:m] = (cy * wq + cx)[:m]
        out["joint_mask"][:m] = ok[:m]
        return out

    # ----------------------------------------------------------------------------------------- decode
    def split_outputs(self, outputs: Any) -> list[np.ndarray]:
        """Validate raw outputs (tuple / list of 3 or dict by name) → 3 float32 arrays (N, C, H, W)."""
        if isinstance(outputs, dict):
            missing = [n for n in OUTPUT_NAMES if n not in outputs]
            if missing:
                raise InputError(f"ae outputs dict lacks {missing}; expected keys {list(OUTPUT_NAMES)}")
            outputs = [outputs[n] for n in OUTPUT_NAMES]
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 3:
            got = type(outputs).__name__ + (f" of {len(outputs)}" if isinstance(outputs, (tuple, list)) else "")
            raise InputError(f"ae decode expects 3 outputs {list(OUTPUT_NAMES)}, got {got}")
        low = split_named_outputs(list(outputs[:2]), OUTPUT_NAMES[:2], self.channels, self.feature_size, "ae")
        high = split_named_outputs([outputs[2]], OUTPUT_NAMES[2:], self.channels, self.hr_size, "ae")
        if low[0].shape[0] != high[0].shape[0]:
            raise InputError(f"ae outputs disagree on batch size: {[low[0].shape[0], high[0].shape[0]]}")
        return [*low, *high]

    def aggregate(self, heatmaps: np.ndarray, heatmaps_hr: np.ndarray) -> np.ndarray:
        """(N, K, Hq, Wq), (N, K, Hh, Wh) → the average of the upsampled 1/4 and the 1/2 heatmaps (N, K, Hh, Wh)."""
        return (upsample2(heatmaps) + heatmaps_hr) / np.float32(2)

    def candidates(self, outputs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs → ``peaks`` (N, K, M, 3) x, y in input px + heatmap value (0 in slots without a peak) and
        ``peak_tags`` (N, K, M, D): what the in-graph decoder outputs."""
        hm, tags, hm_hr = self.split_outputs(outputs)
        agg = self.aggregate(hm, hm_hr)
        n, k, hh, wh = agg.shape
        m, d = self.max_people, self.tag_dim
        flat = agg.reshape(n, k, hh * wh)
        keep = peak_mask(agg, self.nms_kernel).reshape(flat.shape)
        idx = top_peaks(flat, keep, m)
        value = np.take_along_axis(flat, idx, -1)
        score = np.where(np.take_along_axis(keep, idx, -1), value, 0).astype(np.float32)
        x, y = (idx % wh).astype(np.float32), (idx // wh).astype(np.float32)
        dx = self._parabola(flat, idx, value, np.int64(1), x, wh)
        dy = self._parabola(flat, idx, value, np.int64(wh), y, hh)
        half = self.stride / 2
        px, py = (x + dx + 0.5) * half - 0.5, (y + dy + 0.5) * half - 0.5
        peaks = np.stack([px, py, score], -1).astype(np.float32)
        wq = self.feature_size[0]
        tidx = (np.floor(y / 2) * wq + np.floor(x / 2)).astype(np.int64)  # (N, K, M)
        tflat = tags.reshape(n, k, d, -1)
        peak_tags = np.take_along_axis(tflat, tidx[:, :, None, :], -1).transpose(0, 1, 3, 2)
        return peaks, np.ascontiguousarray(peak_tags, np.float32)

    @staticmethod
    def _parabola(flat, idx, centre, step, pos, size) -> np.ndarray:
        """Sub-cell offset along one axis: the vertex of the parabola through (-1, l), (0, c), (1, r), within
        ±0.5; 0 at the map's border or on a flat top."""
        inside = (pos > 0) & (pos < size - 1)
        lo = np.take_along_axis(flat, np.where(inside, idx - step, idx), -1)
        hi = np.take_along_axis(flat, np.where(inside, idx + step, idx), -1)
        denom = 2 * centre - lo - hi
        ok = inside & (denom > 1e-6)
        off = np.float32(0.5) * (hi - lo) / np.where(ok, denom, np.float32(1))
        return np.where(ok, np.clip(off, -0.5, 0.5), 0).astype(np.float32)

    def decode(self, outputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs → keypoints (N, P, K, 3), scores (N, P), boxes (N, P, 4) xyxy, in input pixels."""
        return self.group(*self.candidates(outputs))

    def group(self, peaks: np.ndarray, peak_tags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates (``peaks`` (N, K, M, 3), ``peak_tags`` (N, K, M, D)) → keypoints (N, P, K, 3), scores (N, P)
        (mean joint value), boxes (N, P, 4) of the labelled joints; P = ``max_people`` slots, best first."""
        peaks, peak_tags = self._check_candidates(peaks, peak_tags)
        from edgepose.codecs.ae_group import group_image

        lsa = _scipy_assignment()
        n, p, k = peaks.shape[0], self.max_people, self.num_keypoints
        kps, scores = np.zeros((n, p, k, 3), np.float32), np.zeros((n, p), np.float32)
        boxes = np.zeros((n, p, 4), np.float32)
        for i in range(n):
            kk, ss, bb = group_image(peaks[i], peak_tags[i], self, lsa)
            kps[i, :len(kk)], scores[i, :len(ss)], boxes[i, :len(bb)] = kk, ss, bb
        return kps, scores, boxes

    def _check_candidates(self, peaks: Any, peak_tags: Any) -> tuple[np.ndarray, np.ndarray]:
        k, m, d = self.num_keypoints, self.max_people, self.tag_dim
        peaks, peak_tags = np.asarray(peaks, np.float32), np.asarray(peak_tags, np.float32)
        peaks = peaks[None] if peaks.ndim == 3 else peaks
        peak_tags = peak_tags[None] if peak_tags.ndim == 3 else peak_tags
        if peaks.ndim != 4 or peaks.shape[1:] != (k, m, 3):
            raise InputError(f"ae peaks must be (N, {k}, {m}, 3), got shape {peaks.shape}")
        if peak_tags.shape != (*peaks.shape[:3], d):
            raise InputError(f"ae peak_tags must be ({peaks.shape[0]}, {k}, {m}, {d}), got shape {peak_tags.shape}")
        return peaks, peak_tags
