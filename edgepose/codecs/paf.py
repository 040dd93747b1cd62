"""OpenPose-style bottom-up codec (Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part Affinity
Fields"): joint heatmaps plus one 2D vector field per limb, grouped into people on the host.

Device side: numpy only (never torch). ``edgepose.codecs.graph_paf.PAFDecode`` does the first two decode steps
(peak NMS, sub-cell offsets) inside an exported graph; the grouping always runs here.

Shapes: N images, K keypoints, L limbs (joint pairs, by default the keypoint schema's skeleton), feature map
(Hf, Wf) = input / stride, P people found (varies per image).
Coordinates: cell (i, j) is centred on input pixel ((j + 0.5) * stride - 0.5, (i + 0.5) * stride - 0.5) (pixel
centres at integers), so a point at input pixel x lies at feature px f = (x + 0.5) / stride - 0.5.

Raw model outputs, in this order (a tuple, or a dict with these names), each (N, C, Hf, Wf) or (C, Hf, Wf):

========  ====  =====================================================================================
name      C     meaning
========  ====  =====================================================================================
heatmaps  K     joint confidence maps: a Gaussian of ``sigma`` feature px, peak 1, max over people
pafs      2L    limb l's unit vector (x in channel 2l, y in 2l + 1) on cells within ``paf_width`` of the
                limb segment, averaged over the people whose limb covers the cell; 0 elsewhere
========  ====  =====================================================================================

Graph-decoded outputs (``PAFDecode``): ``peaks`` (K) the heatmap value at 3x3 maxima above ``peak_threshold``
and 0 elsewhere; ``offsets`` (2K, dx of every joint then dy) the sub-cell peak position from a parabola through
the log heatmap at the cell and its two neighbours per axis (at a border: from the one neighbour and ``sigma``;
exact for a Gaussian, clipped to ±0.5);
``pafs`` passed through.

Grouping: every pair of peaks of a limb's two joints is scored by sampling the limb's PAF at ``samples`` points
on the segment between them (nearest cell) and projecting onto the segment's direction. A pair is a candidate
when at least ``min_above`` of the samples exceed ``paf_threshold`` and the mean projection plus a distance prior
(min(0.5 · Hf / length - 1, 0)) is positive. Candidates are taken greedily by that score over all limbs at once
(each peak at most once per limb): a pair joins, starts or merges people as long as no person gets two peaks of
one joint. People with fewer than ``min_joints`` joints are dropped; a person's score is the sum of its joint
peak values over K.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from edgepose.codecs.base import Codec, split_named_outputs
from edgepose.codecs.centernet import peak_mask
from edgepose.codecs.heatmap import _as_size
from edgepose.errors import ConfigError, InputError
from edgepose.keypoints import get_schema

OUTPUT_NAMES = ("heatmaps", "pafs")
GRAPH_NAMES = ("peaks", "offsets", "pafs")
LOG_FLOOR = 1e-3  # a peak's value is floored here before the log of the sub-cell fit ...
REL_FLOOR = 0.05  # ... and its neighbours at this fraction of it (a Gaussian's neighbour is >= 0.32 of its peak)
_SCHEMAS = {17: "coco", 16: "mpii"}


def subcell_fit(centre: np.ndarray, before: np.ndarray, after: np.ndarray, has_before: np.ndarray,
                has_after: np.ndarray, sigma: float) -> np.ndarray:
    """Sub-cell offset (in [-0.5, 0.5]) of a heatmap peak from the log of its value and its two neighbours along one
    axis: the vertex of the parabola through the three, or at a map border, from the one neighbour there and the
    Gaussian's known ``sigma`` (log c - log n = (1 ± 2 offset) / (2 sigma²)). Exact for a Gaussian target of
    ``sigma``; elsewhere kept well-conditioned (a near-tie cannot make it jump): the centre is floored at LOG_FLOOR,
    the neighbours at REL_FLOOR of it, and the parabola's curvature at half the Gaussian's."""
    c = np.maximum(centre, np.float32(LOG_FLOOR))
    lc, lb, la = (np.log(np.maximum(v, np.float32(REL_FLOOR) * c)) for v in (c, before, after))
    s2 = np.float32(sigma * sigma)
    two = 0.5 * (lb - la) / np.minimum(lb - 2 * lc + la, np.float32(-0.5) / s2)
    one = np.where(has_before, s2 * (lc - lb) - 0.5, 0.5 - s2 * (lc - la))
    off = np.where(has_before & has_after, two, np.where(has_before | has_after, one, 0))
    return np.clip(off, -0.5, 0.5).astype(np.float32)


def peak_values(heatmaps: np.ndarray, threshold: float) -> np.ndarray:
    """(..., H, W) heatmaps → the value at 3x3 maxima (max-pool equality) above ``threshold``, 0 elsewhere."""
    return np.where(peak_mask(heatmaps) & (heatmaps > threshold), heatmaps, 0).astype(np.float32)


def dense_offsets(heatmaps: np.ndarray, sigma: float) -> np.ndarray:
    """(N, K, H, W) → (N, 2K, H, W) sub-cell offsets of every cell (dx of each joint, then dy): the reference of
    ``PAFDecode``'s offsets output."""
    h = np.asarray(heatmaps, np.float32)
    rows, cols = h.shape[-2:]
    col, row = np.arange(cols)[None, :], np.arange(rows)[:, None]
    left = np.concatenate([h[..., :, :1], h[..., :, :-1]], -1)
    right = np.concatenate([h[..., :, 1:], h[..., :, -1:]], -1)
    up = np.concatenate([h[..., :1, :], h[..., :-1, :]], -2)
    down = np.concatenate([h[..., 1:, :], h[..., -1:, :]], -2)
    return np.concatenate([subcell_fit(h, left, right, col > 0, col < cols - 1, sigma),
                           subcell_fit(h, up, down, row > 0, row < rows - 1, sigma)], 1)


class PAFCodec(Codec):
    """Encode people into heatmap / PAF targets; decode raw (or graph-decoded) outputs into people.

    Args:
        input_size: (W, H) of the model input; both divisible by ``stride``.
        stride: input pixels per feature cell.
        num_keypoints: K.
        limbs: L (a, b) joint index pairs; None: the skeleton of the COCO-17 / MPII-16 schema with K joints.
        sigma: heatmap Gaussian sigma, feature px.
        paf_width: half-width of a limb's PAF band, feature px.
        peak_threshold: minimum heatmap value of a joint peak.
        paf_threshold: a PAF sample counts as "on the limb" above this projection.
        samples: points sampled on each candidate segment.
        min_above: fraction of the samples that must be on the limb.
        min_joints: people with fewer joints are dropped.
        max_peaks: at most this many peaks per joint (the highest) enter the grouping.
        max_people: at most this many people (the highest-scoring) are returned per image.
    """

    kind: ClassVar[str] = "paf"

    def __init__(self, input_size: tuple[int, int] = (256, 256), stride: int = 8, num_keypoints: int = 17,
                 limbs: Sequence[Sequence[int]] | None = None, sigma: float = 1.0, paf_width: float = 1.0,
                 peak_threshold: float = 0.1, paf_threshold: float = 0.05, samples: int = 10,
                 min_above: float = 0.8, min_joints: int = 3, max_peaks: int = 32, max_people: int = 30) -> None:
        self.input_size = _as_size(input_size, "input_size")
        ints = (("stride", stride), ("num_keypoints", num_keypoints), ("samples", samples),
                ("min_joints", min_joints), ("max_peaks", max_peaks), ("max_people", max_people))
        for name, value in ints:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.input_size[0] % stride or self.input_size[1] % stride:
            raise ConfigError(f"input_size {self.input_size} must be divisible by stride {stride}")
        for name, value in (("sigma", sigma), ("paf_width", paf_width)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ConfigError(f"{name} must be > 0 feature px, got {value!r}")
        for name, value in (("peak_threshold", peak_threshold), ("paf_threshold", paf_threshold),
                            ("min_above", min_above)):
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
        self.stride, self.num_keypoints, self.samples = stride, num_keypoints, samples
        self.min_joints, self.max_peaks, self.max_people = min_joints, max_peaks, max_people
        self.sigma, self.paf_width = float(sigma), float(paf_width)
        self.peak_threshold, self.paf_threshold = float(peak_threshold), float(paf_threshold)
        self.min_above = float(min_above)
        self.limbs = self._check_limbs(limbs)
        self._limb_ends = tuple(np.array(self.limbs, np.int64).T)

    def _check_limbs(self, limbs) -> tuple[tuple[int, int], ...]:
        k = self.num_keypoints
        if limbs is None:
            if k not in _SCHEMAS:
                raise ConfigError(f"no default skeleton for {k} keypoints (COCO has 17, MPII 16); pass limbs")
            limbs = get_schema(_SCHEMAS[k]).skeleton
        try:
            pairs = tuple((int(a), int(b)) for a, b in limbs)
            ok = len(pairs) > 0 and all(0 <= a < k and 0 <= b < k and a != b for a, b in pairs)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"limbs must be a non-empty list of (a, b) pairs of distinct joint indices in "
                              f"[0, {k}), got {limbs!r}")
        return pairs

    # ----------------------------------------------------------------------------------------- params
    @property
    def feature_size(self) -> tuple[int, int]:
        """(Wf, Hf) of every output map."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    @property
    def channels(self) -> dict[str, int]:
        """Channel count of each raw and graph-decoded output."""
        k = self.num_keypoints
        return {"heatmaps": k, "pafs": 2 * len(self.limbs), "peaks": k, "offsets": 2 * k}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable parameters (for bundle manifests)."""
        return {"kind": self.kind, "input_size": list(self.input_size), "stride": self.stride,
                "num_keypoints": self.num_keypoints, "limbs": [list(p) for p in self.limbs], "sigma": self.sigma,
                "paf_width": self.paf_width, "peak_threshold": self.peak_threshold,
                "paf_threshold": self.paf_threshold, "samples": self.samples, "min_above": self.min_above,
                "min_joints": self.min_joints, "max_peaks": self.max_peaks, "max_people": self.max_people}

    def to_feature(self, xy: np.ndarray) -> np.ndarray:
        """Input pixels → feature px."""
        return (np.asarray(xy, np.float64) + 0.5) / self.stride - 0.5

    def to_input(self, f: np.ndarray) -> np.ndarray:
        """Feature px → input pixels."""
        return (np.asarray(f, np.float32) + np.float32(0.5)) * np.float32(self.stride) - np.float32(0.5)

    # ----------------------------------------------------------------------------------------- encode
    def encode(self, keypoints: np.ndarray, boxes: np.ndarray) -> dict[str, np.ndarray]:
        """People → float32 targets (C, Hf, Wf): ``heatmaps`` (K), ``pafs`` (2L) and ``mask`` (1).

        Args:
            keypoints: (P, K, 3) x, y, v in input pixels (v > 0: labelled). A joint gets a Gaussian when it lies
                within half a cell of the map; a limb gets its PAF when both joints are labelled (clipped to the map).
            boxes: (P, 4) xyxy in input pixels. The mask is 0 inside the box of a person without any labelled
                joint (nobody says where their joints are, so the loss must not call that region background).
        """
        kpts, bxs = self._check_encode_inputs(keypoints, boxes)
        fw, fh = self.feature_size
        f = self.to_feature(kpts[..., :2])
        labelled = (kpts[..., 2] > 0) & np.isfinite(f).all(-1)
        gx, gy = np.arange(fw, dtype=np.float64), np.arange(fh, dtype=np.float64)
        return {"heatmaps": self._encode_heatmaps(f, labelled, gx, gy),
                "pafs": self._encode_pafs(np.where(labelled[..., None], f, 0), labelled, gx, gy),
                "mask": self._encode_mask(bxs, labelled, gx, gy)}

    def _check_encode_inputs(self, keypoints: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kpts = np.asarray(keypoints, dtype=np.float64)
        bxs = np.asarray(boxes, dtype=np.float64)
        k = self.num_keypoints
        if kpts.ndim != 3 or kpts.shape[1:] != (k, 3):
            raise InputError(f"paf encode expects keypoints (P, {k}, 3), got shape {np.shape(keypoints)}")
        if bxs.shape != (kpts.shape[0], 4):
            raise InputError(f"paf encode expects boxes ({kpts.shape[0]}, 4) xyxy, got shape {np.shape(boxes)}")
        return kpts, bxs

    def _encode_heatmaps(self, f, labelled, gx, gy) -> np.ndarray:
        fw, fh = len(gx), len(gy)
        inside = labelled & (f[..., 0] >= -0.5) & (f[..., 0] < fw - 0.5) & (f[..., 1] >= -0.5) & (f[..., 1] < fh - 0.5)
        fx, fy = np.where(inside, f[..., 0], -1e4), np.where(inside, f[..., 1], -1e4)  # (P, K)
        s2 = 2 * self.sigma * self.sigma
        ex = np.exp(-((gx - fx[..., None]) ** 2) / s2)  # (P, K, Wf)
        ey = np.exp(-((gy - fy[..., None]) ** 2) / s2)  # (P, K, Hf)
        maps = ey[..., :, None] * ex[..., None, :]  # (P, K, Hf, Wf)
        out = maps.max(axis=0) if len(maps) else np.zeros((self.num_keypoints, fh, fw))
        return out.astype(np.float32)

    def _encode_pafs(self, f, labelled, gx, gy) -> np.ndarray:
        a, b = np.array(self.limbs).T
        pa, pb = f[:, a], f[:, b]  # (P, L, 2)
        d = pb - pa
        length = np.linalg.norm(d, axis=-1)  # (P, L)
        valid = labelled[:, a] & labelled[:, b] & (length > 1e-6)
        u = d / np.where(valid, length, 1)[..., None]
        rx = gx[None, None, None, :] - pa[..., 0, None, None]  # (P, L, 1, Wf)
        ry = gy[None, None, :, None] - pa[..., 1, None, None]  # (P, L, Hf, 1)
        along = rx * u[..., 0, None, None] + ry * u[..., 1, None, None]  # (P, L, Hf, Wf)
        across = np.abs(rx * u[..., 1, None, None] - ry * u[..., 0, None, None])
        w = self.paf_width
        on = (along >= -w) & (along <= length[..., None, None] + w) & (across <= w) & valid[..., None, None]
        count = on.sum(0)  # (L, Hf, Wf)
        vx = (on * u[..., 0, None, None]).sum(0) / np.maximum(count, 1)
        vy = (on * u[..., 1, None, None]).sum(0) / np.maximum(count, 1)
        fw, fh = len(gx), len(gy)
        return np.stack([vx, vy], 1).reshape(2 * len(self.limbs), fh, fw).astype(np.float32)

    def _encode_mask(self, boxes, labelled, gx, gy) -> np.ndarray:
        mask = np.ones((1, len(gy), len(gx)), np.float32)
        for box in boxes[~labelled.any(-1)]:
            x0, y0 = self.to_feature(box[:2])
            x1, y1 = self.to_feature(box[2:])
            mask[0, (gy >= y0)[:, None] & (gy <= y1)[:, None] & (gx >= x0) & (gx <= x1)] = 0
        return mask

    # ----------------------------------------------------------------------------------------- decode
    def split_outputs(self, outputs: Any, names: Sequence[str] = OUTPUT_NAMES) -> list[np.ndarray]:
        """Validate outputs (tuple / list or dict by name, in ``names`` order) → float32 arrays (N, C, Hf, Wf)."""
        return split_named_outputs(outputs, names, self.channels, self.feature_size, "paf")

    def decode(self, outputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw (heatmaps, pafs) → keypoints (N, P, K, 3) x, y, score, scores (N, P), boxes (N, P, 4) xyxy, in input
        pixels; people sorted by score, unthresholded; P is the most people found in one image (missing joints and
        padding slots have score 0, a missing joint sits at its person's mean joint position)."""
        hm, pafs = self.split_outputs(outputs)
        peaks = peak_values(hm, self.peak_threshold)
        return self._stack([self._image(peaks[i], pafs[i], heatmaps=hm[i]) for i in range(len(hm))])

    def decode_peaks(self, outputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Graph-decoded (peaks, offsets, pafs) → the same as :meth:`decode` (the grouping half of it)."""
        peaks, offsets, pafs = self.split_outputs(outputs, GRAPH_NAMES)
        return self._stack([self._image(peaks[i], pafs[i], offsets=offsets[i]) for i in range(len(peaks))])

    def _image(self, peaks, pafs, *, heatmaps=None, offsets=None) -> tuple[np.ndarray, np.ndarray]:
        """One image's people → (P, K, 3) keypoints in input px and (P,) scores."""
        joint, y, x, score = self._candidates(peaks)
        if heatmaps is not None:
            dx, dy = self._offsets_at(heatmaps, joint, y, x)
        else:
            k = self.num_keypoints
            dx, dy = offsets[joint, y, x], offsets[joint + k, y, x]
        xy = np.stack([x + dx, y + dy], -1).astype(np.float32)  # feature px
        limb, ia, ib, conn = self._connections(joint, xy, pafs)
        members = assemble(self.limbs, joint, limb, ia, ib, conn, self.num_keypoints)
        return self._people(members, xy, score)

    def _candidates(self, peaks: np.ndarray) -> tuple[np.ndarray, ...]:
        """(K, H, W) peak values → joint, y, x, score of each peak, ordered by joint then position, at most
        ``max_peaks`` (the highest) per joint."""
        joint, y, x = np.nonzero(peaks > 0)
        score = peaks[joint, y, x]
        counts = np.bincount(joint, minlength=self.num_keypoints)
        if counts.max(initial=0) > self.max_peaks:
            order = np.lexsort((-score, joint))
            start = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank = np.arange(len(joint)) - start[joint[order]]
            keep = np.sort(order[rank < self.max_peaks])
            joint, y, x, score = joint[keep], y[keep], x[keep], score[keep]
        return joint, y, x, score

    def _offsets_at(self, hm: np.ndarray, joint, y, x) -> tuple[np.ndarray, np.ndarray]:
        """Sub-cell offsets at the given cells of (K, H, W) heatmaps (the same fit as :func:`dense_offsets`)."""
        _, h, w = hm.shape
        c = hm[joint, y, x]
        dx = subcell_fit(c, hm[joint, y, np.maximum(x - 1, 0)], hm[joint, y, np.minimum(x + 1, w - 1)], x > 0,
                         x < w - 1, self.sigma)
        dy = subcell_fit(c, hm[joint, np.maximum(y - 1, 0), x], hm[joint, np.minimum(y + 1, h - 1), x], y > 0,
                         y < h - 1, self.sigma)
        return dx, dy

    def _pairs(self, joint: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (limb, peak of joint a, peak of joint b) combination, as three index arrays (limb-major)."""
        counts = np.bincount(joint, minlength=self.num_keypoints)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        a, b = self._limb_ends
        na, nb = counts[a], counts[b]
        sizes = na * nb
        limb = np.repeat(np.arange(len(a)), sizes)
        r = np.arange(len(limb)) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # index within the limb's block
        nbl = nb[limb]
        return limb, start[a][limb] + r // nbl, start[b][limb] + r % nbl

    @staticmethod
    def _project(limb, ia, ib, x, y, flat, t, width: int) -> np.ndarray:
        """PAF of each pair's limb at fractions ``t`` of the segment from peak a to peak b (nearest cell), projected
        on the segment's direction → (M, len(t)). The peaks (x, y) lie in the map, so every sample does."""
        xa, ya = x[ia], y[ia]
        dx, dy = x[ib] - xa, y[ib] - ya
        norm = np.maximum(np.sqrt(dx * dx + dy * dy), np.float32(1e-3))
        cx = np.rint(xa[:, None] + t * dx[:, None]).astype(np.int64)
        cy = np.rint(ya[:, None] + t * dy[:, None]).astype(np.int64)
        cell, ch = cy * width + cx, 2 * limb[:, None]
        return (flat[ch, cell] * (dx / norm)[:, None] + flat[ch + 1, cell] * (dy / norm)[:, None])

    def _connections(self, joint, xy, pafs) -> tuple[np.ndarray, ...]:
        """Candidate limbs: (limb, peak a, peak b, score) of every pair that passes the PAF criteria.

        A few samples from the middle of the segment go first: a pair with every one of them off the limb has more
        misses than ``min_above`` allows, so only the others are sampled in full (the same result, less work)."""
        limb, ia, ib = self._pairs(joint)
        _, fh, fw = pafs.shape
        flat = pafs.reshape(-1, fh * fw)
        x = np.minimum(np.maximum(xy[:, 0], 0), fw - 1)  # a border peak's offset may point off the map
        y = np.minimum(np.maximum(xy[:, 1], 0), fh - 1)
        t = np.linspace(0, 1, self.samples, dtype=np.float32)
        misses = int(np.floor(self.samples * (1 - self.min_above) + 1e-6))  # misses allowed
        # mid-segment samples: the ends lie on the peaks' own limbs, whatever the pair
        probe = np.unique(np.round(np.linspace(0.25, 0.75, misses + 1) * (self.samples - 1)).astype(np.int64))
        if misses + 1 < self.samples and len(probe) == misses + 1:
            alive = (self._project(limb, ia, ib, x, y, flat, t[probe], fw) > self.paf_threshold).any(-1)
            limb, ia, ib = limb[alive], ia[alive], ib[alive]
        proj = self._project(limb, ia, ib, x, y, flat, t, fw)
        dx, dy = x[ib] - x[ia], y[ib] - y[ia]
        length = np.sqrt(dx * dx + dy * dy)
        above = (proj > self.paf_threshold).sum(-1) >= self.samples - misses
        score = proj.mean(-1) + np.minimum(0.5 * fh / np.maximum(length, 1e-3) - 1, 0)
        keep = (length > 1e-3) & above & (score > 0)
        return limb[keep], ia[keep], ib[keep], score[keep]

    def _people(self, members: list[list[int]], xy: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.num_keypoints
        idx = np.asarray(members, np.int64).reshape(-1, k)
        idx = idx[(idx >= 0).sum(1) >= self.min_joints]
        found = idx >= 0
        kps = np.zeros((len(idx), k, 3), np.float32)
        if len(idx):
            pos = self.to_input(xy[np.maximum(idx, 0)])  # (P, K, 2)
            mean = (pos * found[..., None]).sum(1) / found.sum(1)[:, None]
            kps[..., :2] = np.where(found[..., None], pos, mean[:, None, :])
            kps[..., 2] = np.where(found, score[np.maximum(idx, 0)], 0)
        scores = kps[..., 2].sum(1) / k
        order = np.argsort(-scores, kind="stable")[: self.max_people]
        return kps[order], scores[order].astype(np.float32)

    def _stack(self, people: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-image (P_i, K, 3), (P_i,) → padded batch arrays and the boxes of the found joints."""
        n, k, p = len(people), self.num_keypoints, max((len(s) for _, s in people), default=0)
        kps = np.zeros((n, p, k, 3), np.float32)
        scores = np.zeros((n, p), np.float32)
        boxes = np.zeros((n, p, 4), np.float32)
        for i, (kp, sc) in enumerate(people):
            kps[i, :len(sc)], scores[i, :len(sc)] = kp, sc
            if len(sc):
                found = kp[..., 2] > 0
                x, y = kp[..., 0], kp[..., 1]
                big = np.float32(1e9)
                boxes[i, :len(sc)] = np.stack([np.where(found, x, big).min(1), np.where(found, y, big).min(1),
                                               np.where(found, x, -big).max(1), np.where(found, y, -big).max(1)], -1)
        return kps, scores, boxes


def assemble(limbs, joint: np.ndarray, limb: np.ndarray, ia: np.ndarray, ib: np.ndarray, conn: np.ndarray,
             k: int) -> list[list[int]]:
    """Greedy assembly: candidate limbs by descending score; each peak at most once per limb; a limb joins two
    peaks into one person unless that person would hold two peaks of one joint. → per person, K peak indices
    (-1: joint not found)."""
    order = np.argsort(-conn, kind="stable")
    owner = [-1] * len(joint)
    people: list[list[int] | None] = []
    masks: list[int] = []  # per person, a bit per joint it holds
    used: set[tuple[int, int]] = set()
    for li, a, b in zip(limb[order].tolist(), ia[order].tolist(), ib[order].tolist()):
        if (li, a) in used or (li, b) in used:
            continue
        ja, jb = limbs[li]
        pa, pb = owner[a], owner[b]
        if pa < 0 and pb < 0:
            person = [-1] * k
            person[ja], person[jb] = a, b
            owner[a] = owner[b] = len(people)
            people.append(person)
            masks.append((1 << ja) | (1 << jb))
        elif pb < 0 or pa < 0:
            p, free_joint, free = (pa, jb, b) if pb < 0 else (pb, ja, a)
            if masks[p] >> free_joint & 1:
                continue
            people[p][free_joint], owner[free] = free, p
            masks[p] |= 1 << free_joint
        elif pa != pb:
            if masks[pa] & masks[pb]:
                continue
            one = people[pa]
            for j, y in enumerate(people[pb]):
                if y >= 0:
                    one[j], owner[y] = y, pa
            masks[pa] |= masks[pb]
            people[pb] = None
        used.add((li, a))
        used.add((li, b))
    return [p for p in people if p is not None]
