"""SimCC codec (Li et al., "SimCC: a Simple Coordinate Classification Perspective for Human Pose Estimation",
ECCV 2022; the head RTMPose uses): each joint's x and y are classified separately over 1D bins.

Device side: numpy only.

Shapes: N crops, K joints; ``simcc_x`` (N, K, Wx) and ``simcc_y`` (N, K, Wy) with Wx = round(W_in × split_ratio),
Wy = round(H_in × split_ratio): bin i of an axis is the input coordinate i / split_ratio (split ratio 2: half-pixel
bins). Targets are 1D Gaussians of ``sigma`` bins with peak 1 at the joint's exact (float) bin; the model is trained
with RTMPose's KL discrepancy between the softmaxed vectors (``edgepose.train.losses.simcc_kl``), which drives each
vector towards its Gaussian: the peak value approaches 1 where the model is sure, and spreads lower where not.

Decode: the argmax bin of each axis (the first on a tie, as ONNX ArgMax), and the score min(max_x, max_y) — the
weaker axis's peak value, as mmpose's SimCC decode — clipped to [0, 1].
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgepose.codecs.base import Codec
from edgepose.errors import ConfigError, InputError

OUTPUT_NAMES = ("simcc_x", "simcc_y")


class SimCCCodec(Codec):
    """Encode keypoints (input px) to 1D x / y targets, and decode (simcc_x, simcc_y) back to keypoints.

    Args:
        input_size: (W_in, H_in) of the model input crop.
        split_ratio: bins per input pixel (RTMPose: 2.0).
        sigma: (sigma_x, sigma_y) of the targets in bins (RTMPose at 192x256: 4.9, 5.66); one number for both.
    """

    kind: ClassVar[str] = "simcc"

    def __init__(self, input_size: tuple[int, int] = (192, 256), split_ratio: float = 2.0,
                 sigma: float | tuple[float, float] = (4.9, 5.66)) -> None:
        try:
            w, h = (int(v) for v in input_size)
        except (TypeError, ValueError):
            raise ConfigError(f"input_size must be (width, height), got {input_size!r}") from None
        if w < 1 or h < 1:
            raise ConfigError(f"input_size must be positive, got {input_size!r}")
        if isinstance(split_ratio, bool) or not isinstance(split_ratio, (int, float)) or not 0 < split_ratio <= 8:
            raise ConfigError(f"split_ratio must be a number of bins per pixel in (0, 8], got {split_ratio!r}")
        sig = (sigma, sigma) if isinstance(sigma, (int, float)) else tuple(sigma)
        if len(sig) != 2 or not all(isinstance(s, (int, float)) and s > 0 for s in sig):
            raise ConfigError(f"sigma must be a positive number of bins or a pair of them, got {sigma!r}")
        self.input_size = (w, h)
        self.split_ratio = float(split_ratio)
        self.sigma = (float(sig[0]), float(sig[1]))

    @property
    def bins(self) -> tuple[int, int]:
        """(Wx, Wy): the lengths of the x and y vectors."""
        w, h = self.input_size
        return int(round(w * self.split_ratio)), int(round(h * self.split_ratio))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "input_size": list(self.input_size), "split_ratio": self.split_ratio,
                "sigma": list(self.sigma)}

    # ------------------------------------------------------------------------------------------ encode
    def encode(self, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, 3) or (N, K, 3) keypoints in input px → targets (K, Wx + Wy) (x bins then y bins) and weight (K,).

        A joint gets weight 1 when it is labelled (v > 0) in some instance and lies inside the crop on both axes;
        several instances merge by maximum."""
        kpts = np.asarray(keypoints, np.float64)
        kpts = kpts[None] if kpts.ndim == 2 else kpts
        if kpts.ndim != 3 or kpts.shape[-1] != 3:
            raise InputError(f"encode expects keypoints (K, 3) or (N, K, 3), got shape {np.shape(keypoints)}")
        (wx, wy), (sx, sy) = self.bins, self.sigma
        bx, by = kpts[..., 0] * self.split_ratio, kpts[..., 1] * self.split_ratio
        use = (kpts[..., 2] > 0) & np.isfinite(bx) & np.isfinite(by)
        use &= (bx >= 0) & (bx <= wx - 1) & (by >= 0) & (by <= wy - 1)
        xs, ys = np.arange(wx, dtype=np.float64), np.arange(wy, dtype=np.float64)
        k = kpts.shape[1]
        targets = np.zeros((k, wx + wy), np.float32)
        for i, j in zip(*np.nonzero(use)):
            gx = np.exp(-((xs - bx[i, j]) ** 2) / (2 * sx**2))
            gy = np.exp(-((ys - by[i, j]) ** 2) / (2 * sy**2))
            np.maximum(targets[j], np.concatenate([gx, gy]).astype(np.float32), out=targets[j])
        return targets, use.any(axis=0).astype(np.float32)

    # ------------------------------------------------------------------------------------------ decode
    def split(self, outputs: Any) -> tuple[np.ndarray, np.ndarray]:
        """(simcc_x, simcc_y) as a tuple / list, a dict by name, or one (…, K, Wx + Wy) array → two float32
        arrays (N, K, Wx), (N, K, Wy); a single crop's (K, W) vectors get a batch axis."""
        (wx, wy) = self.bins
        if isinstance(outputs, np.ndarray) and outputs.shape[-1] == wx + wy:
            outputs = (outputs[..., :wx], outputs[..., wx:])
        if isinstance(outputs, dict):
            missing = [n for n in OUTPUT_NAMES if n not in outputs]
            if missing:
                raise InputError(f"simcc outputs dict lacks {missing}; expected keys {list(OUTPUT_NAMES)}")
            outputs = [outputs[n] for n in OUTPUT_NAMES]
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            raise InputError(f"simcc decode expects 2 outputs {list(OUTPUT_NAMES)}, got {type(outputs).__name__}")
        arrays = []
        for name, arr, want in zip(OUTPUT_NAMES, outputs, (wx, wy)):
            a = np.asarray(arr, np.float32)
            a = a[None] if a.ndim == 2 else a
            if a.ndim != 3 or a.shape[-1] != want:
                raise InputError(f"simcc output {name!r} must be (N, K, {want}) or (K, {want}), got shape "
                                 f"{np.shape(arr)}")
            arrays.append(a)
        if arrays[0].shape[:2] != arrays[1].shape[:2]:
            raise InputError(f"simcc_x {arrays[0].shape} and simcc_y {arrays[1].shape} disagree on (N, K)")
        return arrays[0], arrays[1]

    def decode(self, outputs: Any) -> np.ndarray:
        """(simcc_x, simcc_y) → keypoints (N, K, 3) float32: x, y in input px, score in [0, 1]."""
        sx, sy = self.split(outputs)
        sx, sy = (np.nan_to_num(a, nan=-np.inf, posinf=np.finfo(np.float32).max) for a in (sx, sy))
        ix, iy = sx.argmax(-1), sy.argmax(-1)
        mx, my = np.take_along_axis(sx, ix[..., None], -1)[..., 0], np.take_along_axis(sy, iy[..., None], -1)[..., 0]
        out = np.empty((*ix.shape, 3), np.float32)
        out[..., 0] = ix / self.split_ratio
        out[..., 1] = iy / self.split_ratio
        out[..., 2] = np.clip(np.minimum(mx, my), 0.0, 1.0)
        return out

    @staticmethod
    def near_ties(outputs: tuple[np.ndarray, np.ndarray], rel_gap: float) -> np.ndarray:
        """(N, K) bool: joints whose argmax on both axes leads the runner-up by more than ``rel_gap`` of the
        vector's span (where two backends' float noise cannot flip it)."""
        ok = None
        for a in outputs:
            a = np.asarray(a, np.float64)
            top2 = np.sort(a, axis=-1)[..., -2:]
            span = a.max(-1) - a.min(-1) + 1e-12
            axis_ok = (top2[..., 1] - top2[..., 0]) > rel_gap * span
            ok = axis_ok if ok is None else ok & axis_ok
        return ok

