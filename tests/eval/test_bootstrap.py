"""The paired bootstrap of the AP drop: its AP equals pycocotools', its interval behaves like one."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.calibration.gate import GateReport
from edgepose.errors import InputError
from edgepose.eval.bootstrap import ap_from_matches, ap_interval, paired_drop_interval
from edgepose.eval.coco_eval import coco_keypoint_eval


def _ground_truth(images: int, seed: int = 0) -> dict:
    """``images`` 640x480 images with 1-3 people each: random boxes, 17 labelled keypoints inside them."""
    rng = np.random.default_rng(seed)
    anns = []
    for image_id in range(1, images + 1):
        for _ in range(rng.integers(1, 4)):
            x, y, w, h = rng.uniform(0, 400), rng.uniform(0, 200), rng.uniform(60, 200), rng.uniform(120, 260)
            kp = np.c_[rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.full(17, 2.0)]
            anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=1, bbox=[x, y, w, h], area=w * h,
                             iscrowd=0, num_keypoints=17, keypoints=kp.ravel().tolist()))
    return dict(images=[dict(id=i, width=640, height=480, file_name=f"{i}.jpg") for i in range(1, images + 1)],
                annotations=anns, categories=[dict(id=1, name="person")])


def _predictions(gt: dict, noise_px: float, seed: int, miss: float = 0.0, false: float = 0.0) -> list[dict]:
    """Each person's keypoints plus Gaussian noise; ``miss`` of them dropped, ``false`` extra random people."""
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        if rng.random() < miss:
            continue
        kp = np.asarray(a["keypoints"], float).reshape(17, 3)
        kp[:, :2] += rng.normal(0, noise_px, (17, 2))
        out.append(dict(image_id=a["image_id"], category_id=1, keypoints=kp.ravel().tolist(),
                        score=float(rng.choice([0.5, rng.random()]))))  # ties in score too
        if rng.random() < false:
            junk = np.c_[rng.uniform(0, 640, 17), rng.uniform(0, 480, 17), np.ones(17)]
            out.append(dict(image_id=a["image_id"], category_id=1, keypoints=junk.ravel().tolist(),
                            score=float(rng.random())))
    return out


def _matches(gt, results):
    stats = coco_keypoint_eval(gt, results, keep_matches=True)
    return stats["AP"], stats["matches"]


@pytest.mark.parametrize("noise,miss,false", [(2.0, 0.0, 0.0), (6.0, 0.2, 0.3), (15.0, 0.5, 1.0)])
def test_resampled_ap_is_pycocotools_ap(noise, miss, false):
    gt = _ground_truth(40)
    ap, matches = _matches(gt, _predictions(gt, noise, seed=1, miss=miss, false=false))
    assert 0.0 < ap < 1.0
    assert ap_from_matches(matches) == pytest.approx(ap, abs=1e-12)


def test_images_without_people_or_results():
    gt = _ground_truth(6)
    gt["images"].append(dict(id=99, width=640, height=480, file_name="empty.jpg"))  # nobody in it
    preds = [p for p in _predictions(gt, 3.0, seed=2) if p["image_id"] != 1]  # image 1: every person missed
    preds.append(dict(preds[0], image_id=99))  # a false person where nobody is
    ap, matches = _matches(gt, preds)
    assert ap_from_matches(matches) == pytest.approx(ap, abs=1e-12)
    assert np.isnan(ap_from_matches([m for m, im in zip(matches, gt["images"]) if im["id"] == 99]))


def test_no_records_when_the_ap_averages_categories():
    gt = _ground_truth(4)
    gt["categories"].append(dict(id=2, name="dog"))
    gt["annotations"][0]["category_id"] = 2
    assert _matches(gt, _predictions(gt, 3.0, seed=1))[1] is None


def test_paired_interval():
    gt = _ground_truth(60)
    ref = _matches(gt, _predictions(gt, 4.0, seed=3))[1]
    assert paired_drop_interval(ref, ref) == (0.0, 0.0)  # the same model on the same images: no spread
    ap_ref, _ = _matches(gt, _predictions(gt, 4.0, seed=3))
    ap_cand, cand = _matches(gt, _predictions(gt, 7.0, seed=4))
    lo, hi = paired_drop_interval(ref, cand)
    assert 0.0 < lo < ap_ref - ap_cand < hi  # a clearly worse candidate: the whole interval above 0
    assert paired_drop_interval(ref, cand) == (lo, hi)  # seeded
    assert paired_drop_interval(ref, cand, seed=1) != (lo, hi)
    lo90, hi90 = paired_drop_interval(ref, cand, level=0.9)
    assert lo < lo90 < hi90 < hi
    # four times the images: about half the width
    big = _ground_truth(240, seed=5)
    wide = paired_drop_interval(*(_matches(big, _predictions(big, n, seed=s))[1] for n, s in ((4.0, 3), (7.0, 4))))
    assert 0.3 < (wide[1] - wide[0]) / (hi - lo) < 0.8
    with pytest.raises(InputError, match="same images"):
        paired_drop_interval(ref, cand[:-1])
    with pytest.raises(InputError, match="resamples"):
        paired_drop_interval(ref, cand, resamples=1)


def test_single_model_interval():
    gt = _ground_truth(60)
    ap, records = _matches(gt, _predictions(gt, 6.0, seed=3, miss=0.1))
    lo, hi = ap_interval(records)
    assert lo < ap < hi and hi - lo > 0.01  # around the observed AP, with some spread
    assert ap_interval(records) == (lo, hi)  # seeded
    lo90, hi90 = ap_interval(records, level=0.9)
    assert lo < lo90 < hi90 < hi
    assert all(np.isnan(ap_interval([None, None])))  # no person in any resample
    with pytest.raises(InputError, match="received none"):
        ap_interval([])


def _report(drop, ci, limit=1.0) -> GateReport:
    return GateReport(ap_reference=50.0, ap=50.0 - drop, max_ap_drop=limit, mean_keypoint_error_px=0.5,
                      per_keypoint_error_px={}, val="synthetic-val:100", num_images=100,
                      extra={"ap_drop_interval95": ci} if ci else {})


def test_gate_report_says_when_its_verdict_is_noise():
    near = _report(0.95, [-0.4, 2.3])
    assert near.passed and "95 % interval -0.40 to 2.30" in near.summary()
    assert "within noise" in near.noise_note() and "passed with a drop of 0.95" in near.noise_note()
    assert "spans the limit 1" in near.noise_note()
    assert "lies above the limit" in _report(0.9, [1.1, 2.0]).noise_note()  # passed, yet the resamples say no
    assert "lies below the limit" in _report(1.1, [0.2, 0.9]).noise_note()
    assert near.to_dict()["ap_drop_interval95"] == [-0.4, 2.3]
    assert "failed with a drop of 1.20" in _report(1.2, [0.3, 2.1]).noise_note()
    assert _report(0.2, [-0.3, 0.7]).noise_note() is None  # the whole interval under the limit
    assert _report(3.0, [1.5, 4.0]).noise_note() is None  # a clear failure
    assert _report(0.2, None).noise_note() is None and "interval" not in _report(0.2, None).summary()
