"""COCO OKS AP on coco-mini, checked against pycocotools' COCOeval called directly."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.errors import DataError, InputError
from edgepose.eval import STAT_NAMES, coco_keypoint_eval, poses_to_coco_results, write_results_json

pytest.importorskip("pycocotools", reason="pycocotools missing: pip install 'edgepose[eval]'")

GT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco-mini" / "test_coco.json"


@pytest.fixture(scope="module")
def gt() -> dict:
    return json.loads(GT.read_text())


def _gt_as_results(gt: dict, noise_px: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for ann in gt["annotations"]:
        if ann["num_keypoints"] == 0:
            continue
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        kps[:, :2] += rng.normal(0.0, noise_px, size=(len(kps), 2))
        kps[:, 2] = 1.0
        out.append({"image_id": ann["image_id"], "category_id": 1,
                    "keypoints": kps.reshape(-1).tolist(), "score": float(rng.uniform(0.5, 1.0))})
    return out


def _pycocotools_direct(results: list[dict]) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(GT))
        coco_dt = coco_gt.loadRes(json.loads(json.dumps(results)))
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def test_ground_truth_as_predictions_gives_ap_1(gt: dict, capsys) -> None:
    res = _gt_as_results(gt)
    for r in res:
        r["score"] = 1.0
    stats = coco_keypoint_eval(GT, res)
    assert list(stats) == list(STAT_NAMES)
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert stats["AR"] == pytest.approx(1.0)
    assert capsys.readouterr().out == ""  # pycocotools' printing is silenced


@pytest.mark.parametrize("noise_px", [3.0, 8.0])
def test_perturbed_predictions_match_pycocotools_directly(gt: dict, noise_px: float) -> None:
    res = _gt_as_results(gt, noise_px=noise_px, seed=11)
    ours = coco_keypoint_eval(GT, res)
    ref = _pycocotools_direct(res)
    assert [ours[k] for k in STAT_NAMES] == ref
    assert 0.0 < ours["AP"] < 1.0
    assert coco_keypoint_eval(gt, res) == ours  # a dict ground truth gives the same numbers


def test_wider_sigmas_forgive_more(gt: dict) -> None:
    res = _gt_as_results(gt, noise_px=8.0, seed=11)
    base = coco_keypoint_eval(GT, res)["AP"]
    wide = coco_keypoint_eval(GT, res, sigmas=[0.2] * 17)["AP"]
    assert wide > base
    with pytest.raises(DataError, match="expected 48"):
        coco_keypoint_eval(GT, res, schema="mpii")


def test_empty_results_give_zero() -> None:
    stats = coco_keypoint_eval(GT, [])
    assert stats["AP"] == 0.0 and all(v == 0.0 for v in stats.values())


def test_unknown_image_ids_are_a_data_error(gt: dict) -> None:
    res = _gt_as_results(gt)
    res[0]["image_id"] = 999999
    with pytest.raises(DataError, match="999999"):
        coco_keypoint_eval(GT, res)
    with pytest.raises(DataError, match="not found"):
        coco_keypoint_eval(GT.parent / "missing.json", res)


def test_poses_to_results_and_atomic_writer(tmp_path: Path, gt: dict) -> None:
    kps = np.arange(2 * 17 * 3, dtype=np.float32).reshape(2, 17, 3)
    res = poses_to_coco_results(785, kps, np.array([0.9, 0.4]))
    assert len(res) == 2 and res[1]["score"] == pytest.approx(0.4) and res[0]["image_id"] == 785
    assert res[1]["keypoints"] == kps[1].reshape(-1).tolist()
    with pytest.raises(InputError):
        poses_to_coco_results(785, kps, np.array([0.9]))
    path = write_results_json(tmp_path / "sub" / "results.json", res)
    assert json.loads(path.read_text()) == res
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]  # no temp files left
    full = _gt_as_results(gt, noise_px=3.0, seed=1)
    write_results_json(path, full)
    assert coco_keypoint_eval(GT, json.loads(path.read_text())) == coco_keypoint_eval(GT, full)


def test_duplicate_annotation_ids_are_refused(coco_mini_json=None):
    import json
    from pathlib import Path

    import pytest

    from edgepose.errors import DataError
    from edgepose.eval.coco_eval import coco_keypoint_eval

    path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco-mini" / "test_coco.json"
    gt = json.loads(path.read_text())
    for a in gt["annotations"]:
        a["id"] = 7
    with pytest.raises(DataError, match="duplicate annotation id 7"):
        coco_keypoint_eval(gt, [])
