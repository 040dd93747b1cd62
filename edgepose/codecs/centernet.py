"""CenterNet-style multi-person codec (Zhou et al., "Objects as Points"): person centres, boxes, joint offsets
and joint heatmaps on one stride-``s`` feature map.

Device side: numpy only (never torch). Every decode step maps onto an exportable op (MaxPool, TopK,
GatherElements, Where, ArgMin, Floor, arithmetic) and ``edgepose.codecs.graph.CenterNetDecode`` repeats it
in torch; the two are tested against each other.

Shapes: N images, P = ``max_people`` person slots, K keypoints, feature map (Hf, Wf) = input / stride.
Coordinates: "feature px" f relate to input-tensor pixels x by x = f * stride; cell (i, j) covers
feature px [j, j + 1) x [i, i + 1), so a point at feature px c lies in cell floor(c) with sub-cell
offset c - floor(c) in [0, 1).

Raw model outputs, in this order (a tuple, or a dict with these names), each (N, C, Hf, Wf) or (C, Hf, Wf):

==================  ====  ==============================================================================
name                C     meaning
==================  ====  ==============================================================================
center_heatmap      1     person-centre logits (centre = centre of the person's xyxy box)
center_offset       2     sub-cell offset of the centre (feature px)
box_size            2     box width, height (feature px)
kpt_offset          2K    joint k at (cell_x + dx_k, cell_y + dy_k), channels x0, y0, x1, y1, ...
kpt_heatmap         K     joint logits
kpt_subpixel        2     sub-cell offset of a joint at its heatmap peak cell
==================  ====  ==============================================================================

Ties in the top-K selections resolve to the lower flat index (the ONNX TopK / TF top_k rule).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from edgepose.codecs.base import Codec, split_named_outputs
from edgepose.codecs.heatmap import _as_size
from edgepose.errors import ConfigError, InputError

OUTPUT_NAMES = ("center_heatmap", "center_offset", "box_size", "kpt_offset", "kpt_heatmap", "kpt_subpixel")
NEG_FILL = -1e30  # rank of non-peak cells (below any real logit)
FAR = 1e12  # squared distance of a disallowed snap candidate


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet / CornerNet Gaussian radius (feature px) for a box of (height, width) feature px: the
    smallest of the three radii at which a corner-shifted box still has IoU ``min_overlap``."""
    hw, s = height * width, height + width
    r1 = (s + math.sqrt(max(s * s - 4 * hw * (1 - min_overlap) / (1 + min_overlap), 0.0))) / 2
    r2 = (2 * s + math.sqrt(max(4 * s * s - 16 * (1 - min_overlap) * hw, 0.0))) / 2
    b3 = -2 * min_overlap * s
    r3 = (b3 + math.sqrt(max(b3 * b3 - 16 * min_overlap * (min_overlap - 1) * hw, 0.0))) / 2
    return min(r1, r2, r3)


def draw_gaussian(target: np.ndarray, cx: int, cy: int, sigma: float) -> None:
    """Max-merge a peak-1 Gaussian of ``sigma`` centred on integer cell (cx, cy) into (H, W) ``target``,
    within a 3-sigma square."""
    h, w = target.shape
    r = max(math.ceil(3 * sigma), 0)
    x0, x1, y0, y1 = max(cx - r, 0), min(cx + r + 1, w), max(cy - r, 0), min(cy + r + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    gx = np.exp(-((np.arange(x0, x1) - cx) ** 2) / (2 * sigma * sigma))
    gy = np.exp(-((np.arange(y0, y1) - cy) ** 2) / (2 * sigma * sigma))
    np.maximum(target[y0:y1, x0:x1], np.outer(gy, gx).astype(np.float32), out=target[y0:y1, x0:x1])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)


def peak_mask(logits: np.ndarray) -> np.ndarray:
    """(..., H, W) → bool mask of cells equal to their 3x3 neighbourhood maximum (max-pool NMS, -inf pad)."""
    h, w = logits.shape[-2:]
    pad = [(0, 0)] * (logits.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(logits, pad, mode="constant", constant_values=-np.inf)
    pooled = np.full_like(logits, -np.inf)
    for dy in range(3):
        for dx in range(3):
            np.maximum(pooled, padded[..., dy:dy + h, dx:dx + w], out=pooled)
    return logits == pooled


def topk_peaks(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(..., H, W) logits → flat indices (..., k) of the k highest 3x3 peaks (non-peaks rank last, ties
    to the lower index) and their sigmoid scores (..., k), 0 for slots that are not peaks."""
    h, w = logits.shape[-2:]
    flat = logits.reshape(*logits.shape[:-2], h * w)
    keep = peak_mask(logits).reshape(flat.shape)
    rank = np.where(keep, flat, np.float32(NEG_FILL))
    idx = np.argsort(-rank, axis=-1, kind="stable")[..., :k]
    score = np.where(np.take_along_axis(keep, idx, -1), sigmoid(np.take_along_axis(flat, idx, -1)), 0)
    return idx, score.astype(np.float32)


def gather_channels(maps: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(N, C, H, W) maps, (N, M) flat indices → (N, C, M) values (GatherElements)."""
    n, c, h, w = maps.shape
    return np.take_along_axis(maps.reshape(n, c, h * w), np.broadcast_to(idx[:, None, :], (n, c, idx.shape[1])), 2)


class CenterNetCodec(Codec):
    """Encode people (keypoints + boxes) into dense CenterNet targets, decode raw outputs to people.

    Args:
        input_size: (W, H) of the model input; both divisible by ``stride``.
        stride: input pixels per feature cell.
        num_keypoints: K.
        max_people: P, the fixed number of person slots decode returns (sorted by score).
        min_overlap: IoU of the CenterNet Gaussian radius; sigma = (2 * radius + 1) / 6.
        kpt_sigma: joint Gaussian sigma in feature px; None uses the person's radius-based sigma.
        snap: move regressed joints to the nearest joint-heatmap peak (plus its sub-pixel offset).
        snap_threshold: minimum sigmoid score of a joint peak that can be snapped to.
        snap_max_dist: snap only to peaks closer than this fraction of max(box w, box h) (at least 1 feature px).
        snap_box_margin: snap only to peaks inside the person box enlarged by this fraction per side.
    """

    kind: ClassVar[str] = "centernet"

    def __init__(self, input_size: tuple[int, int] = (256, 256), stride: int = 4, num_keypoints: int = 17,
                 max_people: int = 20, min_overlap: float = 0.7, kpt_sigma: float | None = None,
                 snap: bool = True, snap_threshold: float = 0.1, snap_max_dist: float = 0.3,
                 snap_box_margin: float = 0.1) -> None:
        self.input_size = _as_size(input_size, "input_size")
        for name, value in (("stride", stride), ("num_keypoints", num_keypoints), ("max_people", max_people)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.input_size[0] % stride or self.input_size[1] % stride:
            raise ConfigError(f"input_size {self.input_size} must be divisible by stride {stride}")
        self.stride, self.num_keypoints, self.max_people = stride, num_keypoints, max_people
        fw, fh = self.feature_size
        if max_people > fw * fh:
            raise ConfigError(f"max_people {max_people} exceeds the {fw}x{fh} feature cells")
        if not 0 < min_overlap < 1:
            raise ConfigError(f"min_overlap must be in (0, 1), got {min_overlap!r}")
        if kpt_sigma is not None and not kpt_sigma > 0:
            raise ConfigError(f"kpt_sigma must be None or > 0 feature px, got {kpt_sigma!r}")
        if not 0 <= snap_threshold < 1 or not snap_max_dist > 0 or not snap_box_margin >= 0:
            raise ConfigError(f"need 0 <= snap_threshold < 1, snap_max_dist > 0, snap_box_margin >= 0; got "
                              f"{snap_threshold!r}, {snap_max_dist!r}, {snap_box_margin!r}")
        self.min_overlap = float(min_overlap)
        self.kpt_sigma = None if kpt_sigma is None else float(kpt_sigma)
        self.snap = bool(snap)
        self.snap_threshold = float(snap_threshold)
        self.snap_max_dist = float(snap_max_dist)
        self.snap_box_margin = float(snap_box_margin)

    # ----------------------------------------------------------------------------------------- params
    @property
    def feature_size(self) -> tuple[int, int]:
        """(Wf, Hf) of every output map."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    @property
    def channels(self) -> dict[str, int]:
        """Channel count of each raw output, in output order."""
        k = self.num_keypoints
        return dict(zip(OUTPUT_NAMES, (1, 2, 2, 2 * k, k, 2)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable parameters (for bundle manifests)."""
        return {"kind": self.kind, "input_size": list(self.input_size), "stride": self.stride,
                "num_keypoints": self.num_keypoints, "max_people": self.max_people,
                "min_overlap": self.min_overlap, "kpt_sigma": self.kpt_sigma, "snap": self.snap,
                "snap_threshold": self.snap_threshold, "snap_max_dist": self.snap_max_dist,
                "snap_box_margin": self.snap_box_margin}

    def person_sigma(self, box_w: float, box_h: float) -> float:
        """Centre Gaussian sigma (feature px) for a box of (box_w, box_h) feature px."""
        radius = max(0, int(gaussian_radius(box_h, box_w, self.min_overlap)))
        return (2 * radius + 1) / 6

    # ----------------------------------------------------------------------------------------- encode
    def encode(self, keypoints: np.ndarray, boxes: np.ndarray) -> dict[str, np.ndarray]:
        """People → dense float32 targets (C, Hf, Wf) keyed by output name plus masks.

        Args:
            keypoints: (P, K, 3) x, y, v in input pixels (v > 0 means labelled).
            boxes: (P, 4) xyxy in input pixels. People with an empty box or a centre off the map are
                skipped; two people on one centre cell: the later one's regression targets win.
                kpt_subpixel has one (x, y) pair per cell, so joints sharing a cell share it (last wins).

        Returns keys: center_heatmap (1), center_offset (2), box_size (2), center_mask (1), kpt_offset (2K),
        kpt_offset_mask (2K), kpt_heatmap (K), kpt_subpixel (2), kpt_subpixel_mask (1).
        """
        kpts, bxs = self._check_encode_inputs(keypoints, boxes)
        fw, fh = self.feature_size
        k = self.num_keypoints
        shapes = {**self.channels, "center_mask": 1, "kpt_offset_mask": 2 * k, "kpt_subpixel_mask": 1}
        t = {name: np.zeros((c, fh, fw), dtype=np.float32) for name, c in shapes.items()}
        for kp, box in zip(kpts / self.stride, bxs / self.stride):
            self._encode_person(t, kp, box)
        return t

    def _check_encode_inputs(self, keypoints: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kpts = np.asarray(keypoints, dtype=np.float64)
        bxs = np.asarray(boxes, dtype=np.float64)
        k = self.num_keypoints
        if kpts.ndim != 3 or kpts.shape[1:] != (k, 3):
            raise InputError(f"encode expects keypoints (P, {k}, 3), got shape {np.shape(keypoints)}")
        if bxs.shape != (kpts.shape[0], 4):
            raise InputError(f"encode expects boxes ({kpts.shape[0]}, 4) xyxy, got shape {np.shape(boxes)}")
        return kpts, bxs

    def _encode_person(self, t: dict[str, np.ndarray], kp: np.ndarray, box: np.ndarray) -> None:
        """Write one person (keypoints (K, 3), box (4,), both in feature px) into the targets ``t``."""
        fw, fh = self.feature_size
        bw, bh = box[2] - box[0], box[3] - box[1]
        c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        if not (bw > 0 and bh > 0) or not (0 <= c[0] < fw and 0 <= c[1] < fh):
            return
        cx, cy = int(c[0]), int(c[1])
        sigma = self.person_sigma(bw, bh)
        draw_gaussian(t["center_heatmap"][0], cx, cy, sigma)
        t["center_offset"][:, cy, cx] = c - (cx, cy)
        t["box_size"][:, cy, cx] = (bw, bh)
        t["center_mask"][0, cy, cx] = 1
        kpt_sigma = sigma if self.kpt_sigma is None else self.kpt_sigma
        for j, (x, y, v) in enumerate(kp):
            if not (v > 0 and np.isfinite(x) and np.isfinite(y)):
                continue
            t["kpt_offset"][2 * j:2 * j + 2, cy, cx] = (x - cx, y - cy)
            t["kpt_offset_mask"][2 * j:2 * j + 2, cy, cx] = 1
            if 0 <= x < fw and 0 <= y < fh:
                jx, jy = int(x), int(y)
                draw_gaussian(t["kpt_heatmap"][j], jx, jy, kpt_sigma)
                t["kpt_subpixel"][:, jy, jx] = (x - jx, y - jy)
                t["kpt_subpixel_mask"][0, jy, jx] = 1

    # ----------------------------------------------------------------------------------------- decode
    def split_outputs(self, outputs: Any) -> list[np.ndarray]:
        """Validate raw outputs (tuple / list of 6 or dict by name) → 6 float32 arrays (N, C, Hf, Wf)."""
        return split_named_outputs(outputs, OUTPUT_NAMES, self.channels, self.feature_size, "centernet")

    def decode(self, outputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs → keypoints (N, P, K, 3), scores (N, P), boxes (N, P, 4) xyxy, in input pixels.

        P = ``max_people`` slots sorted by centre score (sigmoid of the centre logit at a 3x3 peak, 0 for a
        slot without a peak). No score threshold is applied: callers filter by score.
        """
        ch, co, bs, ko, kh, ks = self.split_outputs(outputs)
        n, k, p = ch.shape[0], self.num_keypoints, self.max_people
        fw, _ = self.feature_size
        idx, scores = topk_peaks(ch[:, 0], p)  # (N, P)
        cell = np.stack([idx % fw, idx // fw], -1).astype(np.float32)  # (N, P, 2)
        centre = cell + gather_channels(co, idx).transpose(0, 2, 1)
        size = gather_channels(bs, idx).transpose(0, 2, 1)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], -1)  # (N, P, 4) feature px
        reg = cell[:, :, None, :] + gather_channels(ko, idx).reshape(n, k, 2, p).transpose(0, 3, 1, 2)
        cell_idx = self._cell_index(reg)  # (N, P, K)
        reg_score = sigmoid(np.take_along_axis(kh.reshape(n, k, -1), cell_idx.transpose(0, 2, 1), 2))
        joints, joint_score = reg, reg_score.transpose(0, 2, 1)
        if self.snap:
            joints, joint_score = self._snap(kh, ks, reg, joint_score, boxes)
        keypoints = np.concatenate([joints * self.stride, joint_score[..., None]], -1).astype(np.float32)
        return keypoints, scores, (boxes * self.stride).astype(np.float32)

    def _cell_index(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) feature px → flat index of the containing cell, clipped into the map."""
        fw, fh = self.feature_size
        cx = np.clip(np.floor(xy[..., 0]), 0, fw - 1)
        cy = np.clip(np.floor(xy[..., 1]), 0, fh - 1)
        return (cy * fw + cx).astype(np.int64)

    def _snap(self, kh: np.ndarray, ks: np.ndarray, reg: np.ndarray, reg_score: np.ndarray,
              boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Snap regressed joints reg (N, P, K, 2) to the nearest allowed joint peak.

        Candidates per joint: the top-P 3x3 peaks of kpt_heatmap with score > snap_threshold, at
        cell + kpt_subpixel. Allowed: inside the enlarged person box and closer than the distance limit.
        """
        n, k, p = kh.shape[0], self.num_keypoints, self.max_people
        fw, _ = self.feature_size
        pidx, pscore = topk_peaks(kh, p)  # (N, K, P)
        sub = gather_channels(ks, pidx.reshape(n, k * p)).reshape(n, 2, k, p)
        px = (pidx % fw).astype(np.float32) + sub[:, 0]  # (N, K, Pk)
        py = (pidx // fw).astype(np.float32) + sub[:, 1]
        bw, bh = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]  # (N, P)
        mx, my = bw * self.snap_box_margin, bh * self.snap_box_margin
        lim = np.maximum(np.maximum(bw, bh) * self.snap_max_dist, np.float32(1.0))
        e = (slice(None), slice(None), None, None)  # (N, P) → (N, P, 1, 1)
        cx, cy = px[:, None], py[:, None]  # (N, 1, K, Pk)
        inside = ((cx >= (boxes[..., 0] - mx)[e]) & (cx <= (boxes[..., 2] + mx)[e])
                  & (cy >= (boxes[..., 1] - my)[e]) & (cy <= (boxes[..., 3] + my)[e]))
        ddx, ddy = cx - reg[..., 0:1], cy - reg[..., 1:2]
        d2 = ddx * ddx + ddy * ddy  # (N, P, K, Pk)
        ok = inside & (d2 < (lim * lim)[e]) & (pscore > self.snap_threshold)[:, None]
        best = np.argmin(np.where(ok, d2, np.float32(FAR)), axis=-1)[..., None]  # (N, P, K, 1)
        hit = np.take_along_axis(ok, best, -1)[..., 0]

        def pick(v: np.ndarray) -> np.ndarray:
            return np.take_along_axis(np.broadcast_to(v[:, None], ok.shape), best, -1)[..., 0]

        snapped = np.stack([pick(px), pick(py)], -1)
        joints = np.where(hit[..., None], snapped, reg)
        return joints, np.where(hit, pick(pscore), reg_score)
