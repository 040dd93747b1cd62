"""Helpers for checking a converted model against its reference; public, so users can run them too.

``compare_poses`` reports how far two runtimes' keypoints are apart on the same image. Keypoint decoding
has discontinuities (an argmax between two almost equal cells, a quarter-pixel shift whose direction
depends on the sign of a tiny difference, a top-k between equal scores): numerically equal models may
differ there by whole heatmap pixels, so ``well_conditioned`` marks the joints where the decode is stable
and ``compare_poses`` measures those, and counts the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.codecs.stability import distinct_peaks, well_conditioned

__all__ = ["PoseComparison", "cli_error", "compare_keypoints", "compare_poses", "distinct_peaks", "error_line",
           "make_realistic", "well_conditioned"]


@dataclass
class PoseComparison:
    max_px: float  # largest distance over the compared joints
    compared: int
    skipped: int  # joints left out as ill-conditioned


def compare_keypoints(ref: np.ndarray, cand: np.ndarray, mask: np.ndarray | None = None) -> PoseComparison:
    """ref, cand (..., K, 3) in the same pixel frame; mask (..., K) selects the joints to compare."""
    d = np.linalg.norm(ref[..., :2].astype(np.float64) - cand[..., :2], axis=-1)
    mask = np.ones(d.shape, bool) if mask is None else mask
    return PoseComparison(float(d[mask].max()) if mask.any() else 0.0, int(mask.sum()), int((~mask).sum()))


def compare_poses(ref, cand, *, min_score: float = 0.0) -> PoseComparison:
    """Two ``Poses`` of the same image: people matched by nearest mean keypoint, joints with ref score >= min_score."""
    if len(ref) == 0:
        return PoseComparison(0.0, 0, 0)
    if len(cand) == 0:
        return PoseComparison(float("inf"), 0, int(ref.keypoints[..., 0].size))
    d = np.linalg.norm(ref.keypoints[:, None, :, :2] - cand.keypoints[None, :, :, :2], axis=-1).mean(-1)
    matched = cand.keypoints[d.argmin(1)]
    return compare_keypoints(ref.keypoints, matched, ref.keypoints[..., 2] >= min_score)


def make_realistic(model, images, *, seed: int = 0):
    """Give an untrained model non-degenerate outputs for conversion tests (not accuracy).

    Zoo heads start with near-zero final weights and BatchNorm at unit statistics, so an untrained model
    emits almost constant maps where every argmax is a tie. This re-draws the final convolutions and
    measures BatchNorm statistics on ``images`` (an (N, 3, H, W) float32 batch of real crops).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d) and mod.weight.abs().max() < 0.01:
            with torch.no_grad():
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * 0.1)
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(images))
    return model.eval()


def error_line(stderr: str) -> str:
    """The one ``error: ...`` line a failing ``edgepose`` command printed; asserts there is exactly one and no
    traceback (the CLI's contract for bad input)."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def cli_error(argv: list[str], capture) -> str:
    """Run ``edgepose argv`` in-process, expecting a failure: asserts a non-zero exit code and returns the
    :func:`error_line`. ``capture`` is pytest's ``capsys`` or ``capfd``."""
    from edgepose.cli import main

    code = main(argv)
    err = capture.readouterr().err
    assert code != 0, f"edgepose {' '.join(argv)} exited 0; expected a failure. stderr: {err}"
    return error_line(err)
