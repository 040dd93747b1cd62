"""Google's MoveNet post-processing (SinglePose Lightning / Thunder, MultiPose Lightning): raw head maps →
keypoints, as Google's graphs compute it (read from the TFJS ``modelTopology`` and the tf2onnx references).

Device side: numpy only (never torch). ``edgepose.codecs.graph_movenet`` repeats every step in torch with
exportable ops; the two are tested against each other and against Google's graphs.

Shapes: N images, K keypoints (17, COCO order), P person slots (6), feature map (Hf, Wf) = input / stride.
Raw maps are NCHW float32 (or CHW for one image), channels in the TF convolutions' order; for a joint k the
two-channel heads hold (dy, dx) in channels (2k, 2k + 1), y first. Cells are integer (row, col) positions.

==============  ====  ==========================================================================
name            C     meaning
==============  ====  ==========================================================================
centre          1     person-centre logits
box_scale       2     (multipose) box height, width in cells, clamped at 0
box_offset      2     (multipose) box centre minus the centre cell, (dy, dx) in cells
kpt_regress     2K    joint k minus the centre cell, (dy, dx) in cells
kpt_heatmap     K     joint logits
kpt_offset      2K    joint k minus its heatmap cell, (dy, dx) in cells
==============  ====  ==========================================================================

Single-pose (``MoveNetCodec``), per image:

1. centre cell = first argmax of sigmoid(centre) * w, w = 1 / (distance to the map centre (Hf/2, Wf/2)
   in cells + 1.8): Google's precomputed table (``centre_weight``).
2. regressed joints r_k = centre cell + kpt_regress at the centre cell.
3. joint cell c_k = first argmax of sigmoid(kpt_heatmap_k) / (distance to r_k + 1.7998046875).
4. joint = c_k + kpt_offset_k at c_k; score = sigmoid(kpt_heatmap_k) at c_k.
5. Google outputs (row + dy) * s_y, (col + dx) * s_x with the stored constant s = float16(1 / map size)
   (0.0208282470703125 for 48, exactly 1/64 for 64). Input px: x = (col + dx) * float16(1 / Wf) * W,
   y = (row + dy) * float16(1 / Hf) * H, i.e. 3.99902 px per cell at 192 x 192, not 4 (0.05 px at the edge).

Multipose (``MoveNetMultiPoseCodec``), per image:

1. peaks: sigmoid(centre) cells within 1.0132789611816406e-06 of their 5 x 5 max (max-pool NMS, SAME);
   the P highest peak values (sigmoid(centre), non-peaks 0) in TopK order, ties to the lower flat index.
2. box (cells) = centre cell + box_offset -/+ max(box_scale, 0) / 2, y clipped to [0, Hf], x to [0, Wf].
3. regressed joints r_pk = centre cell + kpt_regress at the centre cell.
4. weighted maps v_pk = sigmoid(kpt_heatmap_k) * exp(-|cell - r_pk|^2 / (0.300048828125 * min(Hf, Wf)))
   * [cell inside box p: ymin <= row < ymax and xmin <= col < xmax]; joint cell c_pk = first argmax of v_pk.
5. joint = c_pk + kpt_offset_k at c_pk, input px = joint * stride; joint score = max over all P persons of
   v_.k at c_pk (not the raw heatmap).
6. person score = centre score * mean of its joint scores above 0.126953125 (0 joints above: sum / 1).

The float constants are Google's as the graphs store them (float16, e.g. 0.3 → 0.300048828125); the centre
table is float16(1 / (d + 1.8)), which equals the 48 x 48 table of Lightning bit for bit and the 64 x 64
table of Thunder in all but 8 cells (d = 35.51: 0.0267944 here, 0.0268097 in the graph, one float16 step).
Google's single-pose graphs hold the tables for their one input size; other sizes use the same formulas.
Ties in every argmax / top-k resolve to the lower flat index (TF, ONNX, numpy).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgepose.codecs.base import Codec, split_named_outputs
from edgepose.codecs.heatmap import _as_size
from edgepose.errors import ConfigError

SINGLE_OUTPUTS = ("centre", "kpt_regress", "kpt_heatmap", "kpt_offset")
MULTI_OUTPUTS = ("centre", "box_scale", "box_offset", "kpt_regress", "kpt_heatmap", "kpt_offset")

CENTRE_DIST_OFFSET = 1.8  # single-pose centre weight 1 / (d + 1.8), stored as float16
KPT_DIST_OFFSET = 1.7998046875  # float16(1.8): single-pose joint heatmap / (d + this)
PEAK_POOL = 5  # multipose centre NMS window
PEAK_TOLERANCE = 1.0132789611816406e-06  # float16(1e-6): a cell within this of its window max is a peak
SPREAD = 0.300048828125  # float16(0.3): multipose weight exp(-d^2 / (SPREAD * min(Hf, Wf)))
KPT_SCORE_THRESHOLD = 0.126953125  # multipose: joints above this count in the person score


def sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 1 / (1 + exp(-x)); exp overflows to inf (sigmoid 0) silently for very negative logits."""
    with np.errstate(over="ignore"):
        return (np.float32(1.0) / (np.float32(1.0) + np.exp(-x.astype(np.float32)))).astype(np.float32)


def fp16(x: Any) -> np.ndarray:
    """Round to float16 and back to float32 (how the TFJS graphs store their float constants)."""
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)


def centre_weight(width: int, height: int) -> np.ndarray:
    """(height, width) float32 single-pose centre weight float16(1 / (distance to (height/2, width/2) + 1.8))."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    d = np.sqrt((ys - np.float32(height / 2)) ** 2 + (xs - np.float32(width / 2)) ** 2)
    return fp16(np.float32(1.0) / (d + np.float32(CENTRE_DIST_OFFSET)))


def max_pool_same(x: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W) → the max over each size x size window centred on a cell (odd size; outside cells ignored)."""
    h, w = x.shape[-2:]
    r = size // 2
    pad = [(0, 0)] * (x.ndim - 2) + [(r, r), (r, r)]
    padded = np.pad(x, pad, mode="constant", constant_values=-np.inf)
    pooled = np.full_like(x, -np.inf)
    for dy in range(size):
        for dx in range(size):
            np.maximum(pooled, padded[..., dy:dy + h, dx:dx + w], out=pooled)
    return pooled


def gather_cells(maps: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(N, C, H, W) maps, (N, M) flat cell indices → (N, C, M) values."""
    n, c = maps.shape[:2]
    flat = maps.reshape(n, c, -1)
    return np.take_along_axis(flat, np.broadcast_to(idx[:, None, :], (n, c, idx.shape[1])), 2)


class _MoveNetCodecBase(Codec):
    """Parameters, ``to_dict`` and the raw-output check the two MoveNet codecs share."""

    output_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, input_size: tuple[int, int], stride: int, num_keypoints: int) -> None:
        self.input_size = _as_size(input_size, "input_size")
        for name, value in (("stride", stride), ("num_keypoints", num_keypoints)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.input_size[0] % stride or self.input_size[1] % stride:
            raise ConfigError(f"input_size {self.input_size} must be divisible by stride {stride}")
        self.stride, self.num_keypoints = stride, num_keypoints

    @property
    def feature_size(self) -> tuple[int, int]:
        """(Wf, Hf) of every raw map."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    @property
    def channels(self) -> dict[str, int]:
        """Channel count of each raw output, in output order."""
        k = self.num_keypoints
        sizes = {"centre": 1, "box_scale": 2, "box_offset": 2, "kpt_regress": 2 * k, "kpt_heatmap": k,
                 "kpt_offset": 2 * k}
        return {name: sizes[name] for name in self.output_names}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "input_size": list(self.input_size), "stride": self.stride,
                "num_keypoints": self.num_keypoints}

    def split_outputs(self, outputs: Any) -> list[np.ndarray]:
        """Validate raw outputs (tuple / list in output order, or dict by name) → float32 arrays (N, C, Hf, Wf)."""
        return split_named_outputs(outputs, self.output_names, self.channels, self.feature_size, self.kind)

    def cell_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat (Hf * Wf,) float32 row and column of every cell."""
        fw, fh = self.feature_size
        ys, xs = np.mgrid[0:fh, 0:fw].astype(np.float32)
        return ys.ravel(), xs.ravel()

    def _cells(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat cell indices → float32 (row, col)."""
        fw = self.feature_size[0]
        return (idx // fw).astype(np.float32), (idx % fw).astype(np.float32)


class MoveNetCodec(_MoveNetCodecBase):
    """Decode MoveNet SinglePose (Lightning, Thunder) raw maps into one person per image (no encode: Google's
    post-processing only; the module docstring lists the steps and constants).

    Args:
        input_size: (W, H) of the model input (192 x 192 Lightning, 256 x 256 Thunder); divisible by stride.
        stride: input pixels per map cell (4).
        num_keypoints: K (17).
    """

    kind: ClassVar[str] = "movenet"
    output_names: ClassVar[tuple[str, ...]] = SINGLE_OUTPUTS

    def __init__(self, input_size: tuple[int, int] = (192, 192), stride: int = 4, num_keypoints: int = 17) -> None:
        super().__init__(input_size, stride, num_keypoints)
        fw, fh = self.feature_size
        self.weight = centre_weight(fw, fh)  # (Hf, Wf)
        self.scale = fp16([1.0 / fw, 1.0 / fh])  # Google's normalisation (x, y) per cell

    def decode(self, outputs: Any) -> np.ndarray:
        """(centre, kpt_regress, kpt_heatmap, kpt_offset) → keypoints (N, K, 3) float32: x, y in input pixels
        = (cell + kpt_offset) * float16(1 / map size) * input size, score = sigmoid(kpt_heatmap) there."""
        centre, regress, heatmap, offset = self.split_outputs(outputs)
        n, k = centre.shape[0], self.num_keypoints
        idx = np.argmax((sigmoid(centre[:, 0]) * self.weight).reshape(n, -1), axis=1)[:, None]  # (N, 1)
        cy, cx = self._cells(idx)
        reg = gather_cells(regress, idx).reshape(n, k, 2)
        ry, rx = cy + reg[..., 0], cx + reg[..., 1]  # (N, K)
        gy, gx = self.cell_grid()
        dist = np.sqrt((gy - ry[..., None]) ** 2 + (gx - rx[..., None]) ** 2)  # (N, K, Hf*Wf)
        probs = sigmoid(heatmap).reshape(n, k, -1)
        joint = np.argmax(probs / (dist + np.float32(KPT_DIST_OFFSET)), axis=2)  # (N, K)
        jy, jx = self._cells(joint)
        off = np.take_along_axis(offset.reshape(n, k, 2, -1), joint[:, :, None, None].repeat(2, 2), 3)[..., 0]
        score = np.take_along_axis(probs, joint[..., None], 2)[..., 0]
        (w, h), (sx, sy) = self.input_size, self.scale
        x = (jx + off[..., 1]) * sx * np.float32(w)
        y = (jy + off[..., 0]) * sy * np.float32(h)
        return np.stack([x, y, score], -1).astype(np.float32)


class MoveNetMultiPoseCodec(_MoveNetCodecBase):
    """Decode MoveNet MultiPose raw maps into ``max_people`` person slots (no encode: Google's post-processing
    only; the module docstring lists the steps and constants).

    Args:
        input_size: (W, H) of the model input (any multiple of 32 for Google's network; 256 x 256 default).
        stride: input pixels per map cell (4).
        num_keypoints: K (17).
        max_people: P, the person slots (6 in Google's graph).
    """

    kind: ClassVar[str] = "movenet-multipose"
    output_names: ClassVar[tuple[str, ...]] = MULTI_OUTPUTS

    def __init__(self, input_size: tuple[int, int] = (256, 256), stride: int = 4, num_keypoints: int = 17,
                 max_people: int = 6) -> None:
        super().__init__(input_size, stride, num_keypoints)
        if not isinstance(max_people, int) or isinstance(max_people, bool) or max_people < 1:
            raise ConfigError(f"max_people must be a positive int, got {max_people!r}")
        fw, fh = self.feature_size
        if max_people > fw * fh:
            raise ConfigError(f"max_people {max_people} exceeds the {fw}x{fh} map cells")
        self.max_people = max_people

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "max_people": self.max_people}

    def decode(self, outputs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """6 raw maps → keypoints (N, P, K, 3) x, y, score; scores (N, P); boxes (N, P, 4) xyxy; in input
        pixels (= cells * stride). Slots in Google's order (by centre score, not by person score); no
        threshold is applied: callers filter by score."""
        centre, box_scale, box_offset, regress, heatmap, offset = self.split_outputs(outputs)
        n, k, p = centre.shape[0], self.num_keypoints, self.max_people
        idx, centre_score = self._centres(centre)  # (N, P)
        cy, cx = self._cells(idx)
        boxes = self._boxes(gather_cells(box_scale, idx), gather_cells(box_offset, idx), cy, cx)  # (N, 4, P)
        reg = gather_cells(regress, idx).reshape(n, k, 2, p)
        ry = cy[:, :, None] + reg[:, :, 0].transpose(0, 2, 1)  # (N, P, K)
        rx = cx[:, :, None] + reg[:, :, 1].transpose(0, 2, 1)
        joint, score = self._refine(sigmoid(heatmap).reshape(n, k, -1), ry, rx, boxes)  # (N, P, K)
        jy, jx = self._cells(joint)
        off = np.take_along_axis(offset.reshape(n, k, 2, -1), joint.transpose(0, 2, 1)[:, :, None].repeat(2, 2), 3)
        s = np.float32(self.stride)
        x = (jx + off[:, :, 1].transpose(0, 2, 1)) * s
        y = (jy + off[:, :, 0].transpose(0, 2, 1)) * s
        keypoints = np.stack([x, y, score], -1).astype(np.float32)
        above = score > np.float32(KPT_SCORE_THRESHOLD)
        total = (centre_score[..., None] * np.where(above, score, np.float32(0))).sum(-1)
        scores = total / np.maximum(above.sum(-1), 1).astype(np.float32)
        ymin, xmin, ymax, xmax = boxes.transpose(1, 0, 2)
        return keypoints, scores.astype(np.float32), (np.stack([xmin, ymin, xmax, ymax], -1) * s).astype(np.float32)

    def _centres(self, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 1, Hf, Wf) logits → flat indices (N, P) and values (N, P) of the top 5 x 5 peaks of the sigmoid."""
        probs = sigmoid(centre[:, 0])
        peak = np.abs(probs - max_pool_same(probs, PEAK_POOL)) < np.float32(PEAK_TOLERANCE)
        ranked = (probs * peak).reshape(probs.shape[0], -1)
        idx = np.argsort(-ranked, axis=1, kind="stable")[:, :self.max_people]
        return idx, np.take_along_axis(ranked, idx, 1)

    def _boxes(self, scale: np.ndarray, offset: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
        """Box heads at the centres (N, 2, P) each → (N, 4, P) ymin, xmin, ymax, xmax in cells, clipped to the map."""
        fw, fh = self.feature_size
        half = np.maximum(scale, np.float32(0)) * np.float32(0.5)
        y, x = cy + offset[:, 0], cx + offset[:, 1]
        return np.stack([np.clip(y - half[:, 0], 0, fh), np.clip(x - half[:, 1], 0, fw),
                         np.clip(y + half[:, 0], 0, fh), np.clip(x + half[:, 1], 0, fw)], 1).astype(np.float32)

    def _refine(self, probs: np.ndarray, ry: np.ndarray, rx: np.ndarray,
                boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint heatmaps (N, K, Hf*Wf) and regressed joints (N, P, K) → joint cell (N, P, K) = argmax of the
        weighted, box-masked heatmap and its score = max over persons of the weighted heatmap at that cell."""
        fw, fh = self.feature_size
        gy, gx = self.cell_grid()
        d2 = (gy - ry[..., None]) ** 2 + (gx - rx[..., None]) ** 2  # (N, P, K, Hf*Wf)
        spread = np.float32(min(fw, fh)) * np.float32(SPREAD)
        ymin, xmin, ymax, xmax = (boxes[:, i, :, None] for i in range(4))  # (N, P, 1)
        inside = (gy >= ymin) & (gy < ymax) & (gx >= xmin) & (gx < xmax)  # (N, P, Hf*Wf)
        weighted = probs[:, None] * np.exp(-d2 / spread) * inside[:, :, None]
        joint = np.argmax(weighted, axis=3)  # (N, P, K)
        best = weighted.max(axis=1)  # (N, K, Hf*Wf)
        score = np.take_along_axis(best, joint.transpose(0, 2, 1), 2).transpose(0, 2, 1)
        return joint, score
