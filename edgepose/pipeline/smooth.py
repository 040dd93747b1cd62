"""Temporal smoothing of tracked keypoints: a One-Euro filter per track and joint (device side: numpy only).

The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) is a low-pass filter whose cutoff frequency rises with
the signal's speed: a still joint is smoothed hard (no jitter), a moving one lightly (little lag). Per joint:

    alpha(fc, dt) = 1 / (1 + 1 / (2 pi fc dt))
    speed  = low-pass(|dx / dt|, d_cutoff)              # smoothed derivative
    cutoff = min_cutoff + beta * speed
    x_hat  = low-pass(x, cutoff)

Speeds here are in person heights per second (the joint's pixel speed divided by its person's box height), so
that the same ``beta`` fits a person 80 px tall and one 800 px tall. Timestamps are seconds (the video's own
clock for a file, the capture clock for a camera). A joint scoring below ``min_keypoint_score`` is passed
through unfiltered and leaves the filter's state as it was, so that a hidden joint's wild guesses do not drag the
filter; when it is confident again the filter takes it up from its last confident position and time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgepose.errors import ConfigError, InputError
from edgepose.utils.numbers import is_number


@dataclass(frozen=True)
class SmoothOptions:
    min_cutoff: float = 1.0  # Hz: the cutoff of a still joint (lower: smoother, more lag when it starts moving)
    beta: float = 2.0  # Hz per (person height / s): how fast the cutoff rises with speed (higher: less lag)
    d_cutoff: float = 1.0  # Hz: the cutoff of the speed estimate
    min_keypoint_score: float = 0.3  # joints scoring below this are passed through and do not update the filter

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            v = getattr(self, name)
            if not is_number(v) or v <= 0:
                raise ConfigError(f"smoothing option {name}={v!r}: expected a frequency in Hz > 0")
        if not is_number(self.beta) or self.beta < 0:
            raise ConfigError(f"smoothing option beta={self.beta!r}: expected a number >= 0")
        if not is_number(self.min_keypoint_score) or not 0 <= self.min_keypoint_score <= 1:
            raise ConfigError(f"smoothing option min_keypoint_score={self.min_keypoint_score!r}: expected 0..1")


def _alpha(cutoff: np.ndarray, dt: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))


class OneEuroFilter:
    """One-Euro filter over an array of ``n`` 2-D points (one person's joints), each with its own state and time."""

    def __init__(self, n: int, options: SmoothOptions | None = None):
        self.options = options or SmoothOptions()
        self.x = np.zeros((n, 2))  # last filtered position
        self.dx = np.zeros((n, 2))  # last filtered derivative (pixels / s)
        self.t = np.full(n, np.nan)  # time of each point's last update (NaN: never)

    def __call__(self, points: np.ndarray, t: float, *, scale: float = 1.0, mask: np.ndarray | None = None):
        """Filter ``points`` (n, 2) seen at time ``t`` (seconds) → (n, 2). ``scale`` (the person's height in pixels)
        normalises speeds; points where ``mask`` is False are returned unchanged and do not update the state."""
        o = self.options
        pts = np.asarray(points, np.float64)
        use = np.ones(len(pts), bool) if mask is None else np.asarray(mask, bool)
        out = pts.copy()
        first = use & np.isnan(self.t)
        self.x[first], self.dx[first], self.t[first] = pts[first], 0.0, t
        run = use & ~first & (t > np.nan_to_num(self.t, nan=np.inf))
        if run.any():
            dt = (t - self.t[run])[:, None]
            dx = (pts[run] - self.x[run]) / dt
            dx_hat = self.dx[run] + _alpha(np.float64(o.d_cutoff), dt) * (dx - self.dx[run])
            speed = np.linalg.norm(dx_hat, axis=1, keepdims=True) / max(float(scale), 1.0)
            a = _alpha(o.min_cutoff + o.beta * speed, dt)
            self.x[run] = self.x[run] + a * (pts[run] - self.x[run])
            self.dx[run], self.t[run] = dx_hat, t
        out[use] = self.x[use]
        return out


class PoseSmoother:
    """One :class:`OneEuroFilter` per track id; filters of tracks that ended are dropped."""

    def __init__(self, options: SmoothOptions | None = None):
        self.options = options or SmoothOptions()
        self.filters: dict[int, OneEuroFilter] = {}
        self.last_t: float | None = None

    def __call__(self, keypoints: np.ndarray, boxes: np.ndarray, ids: np.ndarray, t: float) -> np.ndarray:
        """Smoothed copy of ``keypoints`` (N, K, 3) for tracked people ``ids`` (N,) at time ``t`` (seconds); people
        with id < 0 and the scores are left as they are. Times must not go back."""
        if not is_number(t):
            raise InputError(f"smoothing timestamp must be a finite number of seconds, got {t!r}")
        if self.last_t is not None and t < self.last_t:
            raise InputError(f"smoothing timestamp {t} s is before the previous one ({self.last_t} s); expected "
                             "timestamps that never go back")
        self.last_t = float(t)
        out = np.array(keypoints, np.float32, copy=True)
        for i, tid in enumerate(np.asarray(ids).tolist()):
            if tid < 0:
                continue
            f = self.filters.get(tid)
            if f is None:
                f = self.filters[tid] = OneEuroFilter(out.shape[1], self.options)
            height = float(boxes[i, 3] - boxes[i, 1]) if len(boxes) else 1.0
            mask = out[i, :, 2] >= self.options.min_keypoint_score
            out[i, :, :2] = f(out[i, :, :2], t, scale=height, mask=mask)
        return out

    def retain(self, live_ids) -> None:
        """Drop the filters of tracks not in ``live_ids`` (ended tracks), so a long run keeps its memory flat."""
        for tid in set(self.filters) - set(live_ids):
            del self.filters[tid]
