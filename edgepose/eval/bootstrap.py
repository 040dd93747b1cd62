"""How sure is an AP difference? A paired bootstrap over images of COCO OKS AP.

The accuracy gate compares two models on the same images. Its AP drop is one number, but with 100 images a
drop of 1 AP point can come and go with the choice of images. Resampling the images (with replacement) and
recomputing both APs on each resample gives the spread of the drop; the percentile interval of those
resampled drops says whether a verdict near the limit means anything.

The resampled AP reuses pycocotools' per-image matching (``COCOeval.evaluate``: which detection matched which
person at each OKS threshold) and redoes only its accumulation, for the ``all`` area range at the largest
``maxDets``: the AP that ``stats[0]`` reports. :func:`ap_from_matches` on all images equals that number (a test
holds it to pycocotools); that accumulation is small enough to repeat a thousand times in about a second.
"""

from __future__ import annotations

import numpy as np

from edgepose.errors import InputError

REC_THRS = np.linspace(0.0, 1.0, 101)  # COCO's recall thresholds


def matches_of(ev) -> list[dict | None] | None:
    """Per-image match records of an evaluated ``COCOeval`` (area range ``all``), image order; None when it
    evaluated several categories (its AP averages them, which these records do not)."""
    if len(ev._paramsEval.catIds) != 1:
        return None
    n = len(ev._paramsEval.imgIds)
    max_det = max(ev._paramsEval.maxDets)
    out = []
    for e in ev.evalImgs[:n]:  # category 0, area range 0 ('all') come first
        if e is None:
            out.append(None)
            continue
        out.append({"scores": np.asarray(e["dtScores"][:max_det], np.float64),
                    "matched": np.asarray(e["dtMatches"][:, :max_det]) != 0,
                    "ignored": np.asarray(e["dtIgnore"][:, :max_det], bool),
                    "people": int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))})
    return out


def ap_from_matches(records: list[dict | None]) -> float:
    """COCO AP (mean over the OKS thresholds of the 101-point interpolated precision) of these image records;
    NaN when they hold no person to find."""
    recs = [r for r in records if r is not None]
    people = sum(r["people"] for r in recs)
    if not recs or people == 0:
        return float("nan")
    scores = np.concatenate([r["scores"] for r in recs])
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")  # pycocotools' order, ties kept in image order
    matched = np.concatenate([r["matched"] for r in recs], axis=1)[:, order]
    ignored = np.concatenate([r["ignored"] for r in recs], axis=1)[:, order]
    tp = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
    fp = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
    recall = tp / people
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.flip(np.maximum.accumulate(np.flip(precision, axis=1), axis=1), axis=1)  # envelope
    aps = []
    for rc, pr in zip(recall, precision):
        idx = np.searchsorted(rc, REC_THRS, side="left")
        q = np.where(idx < len(pr), pr[np.minimum(idx, len(pr) - 1)], 0.0)
        aps.append(q.mean())
    return float(np.mean(aps))


def paired_drop_interval(reference: list[dict | None], candidate: list[dict | None], *, resamples: int = 1000,
                         level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval (AP, 0..1) of ``AP(reference) - AP(candidate)`` over ``resamples`` resamplings of the
    images, both models on the same resampled images. Records are :func:`matches_of` lists of the same images."""
    if len(reference) != len(candidate) or not reference:
        raise InputError(f"paired bootstrap needs records of the same images; received {len(reference)} and "
                         f"{len(candidate)}")
    if resamples < 10 or not 0.0 < level < 1.0:
        raise InputError(f"expected resamples >= 10 and 0 < level < 1; received {resamples}, {level}")
    rng = np.random.default_rng(seed)
    n = len(reference)
    drops = []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        drop = ap_from_matches([reference[i] for i in pick]) - ap_from_matches([candidate[i] for i in pick])
        if np.isfinite(drop):  # a resample without any person has no AP
            drops.append(drop)
    if not drops:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(drops, [tail, 100 - tail])
    return float(lo), float(hi)


def ap_interval(records: list[dict | None], *, resamples: int = 1000, level: float = 0.95,
                seed: int = 0) -> tuple[float, float]:
    """Percentile interval (AP, 0..1) of one model's AP over ``resamples`` resamplings of the images (the
    :func:`matches_of` records of ``evaluate(..., keep_matches=True)``); NaNs when no resample has a person."""
    if not records:
        raise InputError("an AP interval needs the match records of at least one image; received none")
    if resamples < 10 or not 0.0 < level < 1.0:
        raise InputError(f"expected resamples >= 10 and 0 < level < 1; received {resamples}, {level}")
    rng = np.random.default_rng(seed)
    n = len(records)
    aps = [ap_from_matches([records[i] for i in rng.integers(0, n, n)]) for _ in range(resamples)]
    aps = [a for a in aps if np.isfinite(a)]
    if not aps:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(aps, [tail, 100 - tail])
    return float(lo), float(hi)
