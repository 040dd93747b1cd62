"""The parity gate: a converted model must reproduce the PyTorch reference before a bundle is written.

Two numbers, both printed and stored in the manifest: the relative error of the raw outputs
(max |a - b| / max |a|) and the largest decoded-keypoint distance in input pixels. Keypoint distances are
measured on joints the reference is confident about (score >= ``score_floor``), because on a joint the
model does not see, an argmax between two equal cells may legitimately go either way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgepose.codecs.stability import distinct_peaks
from edgepose.errors import ExportError


@dataclass
class ParityReport:
    raw_rel_error: float
    keypoint_px_error: float
    samples: int
    rel_tol: float
    px_tol: float
    ill_conditioned: int = 0  # confident joints left out: argmax near-ties (see edgepose.codecs.stability)

    @property
    def passed(self) -> bool:
        return self.raw_rel_error <= self.rel_tol and self.keypoint_px_error <= self.px_tol

    def to_dict(self) -> dict:
        return dict(asdict(self), passed=self.passed)

    def summary(self) -> str:
        return (f"raw outputs rel. error {self.raw_rel_error:.2e} (limit {self.rel_tol:.0e}), "
                f"keypoints max error {self.keypoint_px_error:.4f} px (limit {self.px_tol} px), "
                f"{self.samples} samples" + (f", {self.ill_conditioned} near-tie joints not compared"
                                             if self.ill_conditioned else ""))


def to_layout(batch: np.ndarray, layout: str) -> np.ndarray:
    """NCHW reference batch → the candidate's layout."""
    return np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if layout == "NHWC" else batch


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))


def _keypoints(runtime, outs: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Decoded keypoints (…, K, 3) and person scores (bottom-up; None top-down) from raw or decoded outputs."""
    return runtime.spec.head.decoded(runtime, outs, n)


def _kp_error(ref_k, ref_s, cand_k, score_floor: float, stable=None) -> float:
    if ref_s is None:  # top-down: (N, K, 3)
        mask = ref_k[..., 2] >= score_floor
        if stable is not None:
            mask &= stable
        d = np.linalg.norm(ref_k[..., :2] - cand_k[..., :2], axis=-1)
        return float(d[mask].max()) if mask.any() else 0.0
    worst = 0.0  # bottom-up: match each confident reference person to the closest candidate slot
    for n in range(ref_k.shape[0]):
        for p in np.flatnonzero(ref_s[n] >= max(score_floor, 0.3)):
            d = np.linalg.norm(cand_k[n, :, :, :2] - ref_k[n, p, None, :, :2], axis=-1)  # (P, K)
            j = int(np.argmin(d.mean(axis=1)))
            mask = ref_k[n, p, :, 2] >= score_floor
            if mask.any():
                worst = max(worst, float(d[j][mask].max()))
    return worst


def _distinct(reference, heatmap_reference, batch, ref_scores) -> np.ndarray | None:
    """Joints whose score the peak-distinctness factor leaves alone (None: all are compared). Where a second
    peak lowers a score (``peak_margin``), the score is the relative gap between two near-equal maxima divided by
    the margin: float noise is amplified there by 1 / (margin × maximum), so only its position is compared."""
    margin = (reference.spec.codec or {}).get("peak_margin") if reference.spec.head.heatmaps else None
    if not margin or heatmap_reference is None:
        return None
    return distinct_peaks(heatmap_reference.infer(batch)[0], ref_scores)


def check_parity(reference, candidate, batches: list[np.ndarray], *, rel_tol: float = 1e-4,
                 px_tol: float = 0.1, score_floor: float = 0.2, heatmap_reference=None) -> ParityReport:
    """Run both runtimes on every batch (NCHW float32 for the reference) and compare.

    ``heatmap_reference`` (a runtime giving the raw outputs of a top-down model whose decode takes an argmax:
    heatmaps, SimCC vectors) lets the keypoint check
    leave out joints whose argmax is a near-tie, where equal models may legitimately decode differently.
    """

    rel, px, skipped = 0.0, 0.0, 0
    for batch in batches:
        ref_outs = reference.infer(batch)
        cand_outs = candidate.infer(to_layout(batch, candidate.spec.input.layout))
        if len(ref_outs) != len(cand_outs):
            raise ExportError(f"reference has {len(ref_outs)} outputs, converted model {len(cand_outs)}")
        if reference.spec.decode == "host":
            rel = max(rel, max(_rel(a, b) for a, b in zip(ref_outs, cand_outs)))
        else:  # decoded outputs: scores (heatmap maxima / centre peaks) vary continuously with the input
            ref_scores = reference.spec.head.decoded_scores(ref_outs)
            cand_scores = reference.spec.head.decoded_scores(cand_outs)
            keep = _distinct(reference, heatmap_reference, batch, ref_scores)
            rel = max(rel, _rel(ref_scores, cand_scores) if keep is None else
                      float(np.abs(ref_scores - cand_scores)[keep].max(initial=0.0) / max(np.abs(ref_scores).max(),
                                                                                           1e-12)))
        rk, rs = _keypoints(reference, ref_outs, batch.shape[0])
        ck, _ = _keypoints(candidate, cand_outs, batch.shape[0])
        stable = None
        if heatmap_reference is not None and rs is None:
            raw = ref_outs if heatmap_reference is reference else heatmap_reference.infer(batch)
            stable = reference.spec.head.well_conditioned(raw, rel_gap=1e-4)
            skipped += int(((rk[..., 2] >= score_floor) & ~stable).sum())
        px = max(px, _kp_error(rk, rs, ck, score_floor, stable))
    return ParityReport(rel, px, len(batches), rel_tol, px_tol, skipped)
