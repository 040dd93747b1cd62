"""PCK / PCKh / bbox-normalised PCK."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.eval import pck, pck_bbox, pckh


def _gt(n: int = 4, k: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 200, size=(n, k, 2))


def test_perfect_predictions_score_one() -> None:
    gt = _gt()
    res = pck(gt.copy(), gt, np.ones(gt.shape[:2], bool), np.full(4, 50.0))
    assert res["mean"] == 1.0 and np.all(res["per_joint"] == 1.0)
    assert res["count"].tolist() == [4] * 6


def test_known_displacement_gives_the_expected_fraction() -> None:
    gt = _gt()
    pred = gt.copy()
    norm = np.array([10.0, 20.0, 10.0, 20.0])
    # Move every joint of every person 3 px right: PCK@0.2 threshold is 2 px (norm 10) or 4 px (norm 20).
    pred[..., 0] += 3.0
    res = pck(pred, gt, np.ones((4, 6), bool), norm, alpha=0.2)
    assert res["mean"] == pytest.approx(0.5)
    np.testing.assert_allclose(res["per_joint"], 0.5)
    # Now also displace joint 0 of everyone by 100 px: it is never correct.
    pred[:, 0] += 100.0
    res = pck(pred, gt, np.ones((4, 6), bool), norm, alpha=0.2)
    assert res["per_joint"][0] == 0.0 and res["mean"] == pytest.approx(10 / 24)


def test_invisible_joints_are_excluded() -> None:
    gt = _gt()
    pred = gt.copy()
    visible = np.ones((4, 6), bool)
    visible[:, 2] = False  # never visible: NaN for that joint
    visible[1, 4] = False
    pred[:, 2] += 500.0
    pred[1, 4] += 500.0
    res = pck(pred, gt, visible, np.full(4, 30.0))
    assert res["mean"] == 1.0
    assert np.isnan(res["per_joint"][2]) and res["per_joint"][4] == 1.0
    assert res["count"].tolist() == [4, 4, 0, 4, 3, 4]
    # Correct invisible joints must not count either: only the visible (wrong) ones are scored.
    wrong = gt + 500.0
    wrong[~visible] = gt[~visible]
    res = pck(wrong, gt, visible, np.full(4, 30.0))
    assert res["mean"] == 0.0 and np.nanmax(res["per_joint"]) == 0.0


def test_pckh_and_bbox_normalisers() -> None:
    gt = _gt(n=2)
    pred = gt + np.array([6.0, 8.0])  # 10 px error everywhere
    assert pckh(pred, gt, np.ones((2, 6), bool), np.array([21.0, 19.0]))["per_joint"].tolist() == [0.5] * 6
    boxes = np.array([[0, 0, 40, 60], [10, 10, 60, 30]], float)  # max side 60 and 50
    assert pck_bbox(pred, gt, np.ones((2, 6), bool), boxes, alpha=0.18)["mean"] == pytest.approx(0.5)
    assert pck_bbox(pred, gt, np.ones((2, 6), bool), boxes, alpha=0.21)["mean"] == pytest.approx(1.0)


def test_bad_inputs() -> None:
    gt = _gt()
    with pytest.raises(InputError, match="norm must be finite and > 0"):
        pck(gt, gt, np.ones((4, 6), bool), np.array([1.0, 0.0, 1.0, np.nan]))
    with pytest.raises(InputError, match=r"\(N, K, 2\)"):
        pck(gt[..., :1], gt, np.ones((4, 6), bool), np.ones(4))
    with pytest.raises(InputError, match="visible must be"):
        pck(gt, gt, np.ones((4, 5), bool), np.ones(4))
