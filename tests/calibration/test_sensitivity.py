"""Sensitivity ranking and search, and the gate's keypoint comparison, on fakes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.calibration.gate import GateReport, keypoint_displacement
from edgepose.calibration.sensitivity import output_error, rank_layers, schedule, search
from edgepose.errors import AccuracyGateFailed
from edgepose.runtimes.poses import Poses

REF = [[np.ones((1, 4, 3, 3), np.float32)]]


def _fake_outputs(harm: dict[str, float], calls: list):
    """Each INT8 layer adds its harm to channel 0 of the output; layers kept in float add nothing."""

    def outputs(exclude):
        calls.append(tuple(exclude))
        out = np.ones((1, 4, 3, 3), np.float32)
        out[:, 0] += sum(h for name, h in harm.items() if name not in exclude)
        return [[out]]

    return outputs


def _report(drop: float, limit: float = 1.0) -> GateReport:
    return GateReport(ap_reference=50.0, ap=50.0 - drop, max_ap_drop=limit, mean_keypoint_error_px=0.0,
                      per_keypoint_error_px={}, val="fake", num_images=1)


def test_output_error_is_relative_per_channel():
    a = np.ones((2, 3, 4, 4))
    a[:, 0] *= 1000.0  # one huge channel must not hide an error in the others
    b = a.copy()
    b[:, 1] = 0.0
    assert output_error([[a]], [[b]]) == pytest.approx(1 / 3)
    assert output_error([[a]], [[a]]) == 0.0
    assert output_error([[np.arange(3)]], [[np.arange(3)]]) == 0.0  # integer outputs are ignored


def test_schedule_grows_and_ends_with_all():
    assert schedule(1) == [1]
    assert schedule(10) == [1, 2, 3, 4, 6, 9, 10]
    assert schedule(0) == []
    s = schedule(56)
    assert s[-1] == 56 and s == sorted(set(s))


def test_rank_one_by_one_for_few_layers():
    harm = {"a": 0.1, "b": 2.0, "c": 0.0, "d": 0.5}
    calls: list = []
    base, ranking = rank_layers(list(harm), _fake_outputs(harm, calls), REF, group=4)
    assert [s.name for s in ranking] == ["b", "d", "a", "c"]
    assert base == pytest.approx(2.6 / 4)
    assert ranking[0].gain == pytest.approx(2.0 / 4)
    assert len(calls) == 1 + len(harm)


def test_two_level_ranking_refines_the_worst_groups_only():
    names = [f"l{i}" for i in range(20)]
    harm = dict.fromkeys(names, 0.0)
    harm.update(l13=3.0, l2=1.0, l17=0.1)
    calls: list = []
    _, ranking = rank_layers(names, _fake_outputs(harm, calls), REF, group=4, refine=3)
    assert [s.name for s in ranking[:2]] == ["l13", "l2"]
    assert sorted(s.name for s in ranking) == sorted(names)
    assert ranking[8].name == "l16" and ranking[8].gain == pytest.approx(0.1 / 4)  # group l16-l19 not refined
    assert len(calls) == 1 + 5 + 8  # all-INT8, 5 groups, 2 groups (gain >= 1/4 of the best) x 4 layers


def test_search_keeps_layers_until_the_gate_passes():
    harm = {f"l{i}": h for i, h in enumerate([0.0, 0.2, 3.0, 0.0, 1.0, 0.0])}
    gated = []

    def gate(exclude):
        gated.append(exclude)
        return _report(sum(h for n, h in harm.items() if n not in exclude))

    result = search(list(harm), outputs=_fake_outputs(harm, []), reference=REF, gate=gate, first=_report(4.2))
    assert result.exclude == ("l2", "l4") and result.report.passed
    assert gated == [("l2",), ("l2", "l4")]
    d = result.to_dict()
    assert d["kept_float"] == ["l2", "l4"] and [s["passed"] for s in d["steps"]] == [False, False, True]


def test_search_gives_up_with_accuracy_gate_failed():
    harm = {"a": 1.0, "b": 1.0}
    with pytest.raises(AccuracyGateFailed, match="even with 2 layer"):
        search(list(harm), outputs=_fake_outputs(harm, []), reference=REF, gate=lambda e: _report(5.0))


def test_gate_report_passes_on_the_limit():
    assert _report(1.0).passed and not _report(1.01).passed
    d = _report(0.5).to_dict()
    assert d["ap_drop"] == 0.5 and d["passed"] is True


def _poses(kps) -> Poses:
    kps = np.asarray(kps, np.float32)
    return Poses(kps, np.ones(len(kps), np.float32), np.zeros((len(kps), 4), np.float32))


def test_keypoint_displacement_topdown_and_bottomup():
    ref = _poses([[[10, 10, 0.9], [20, 20, 0.9], [30, 30, 0.1]]])
    cand = _poses([[[13, 14, 0.9], [20, 20, 0.9], [90, 90, 0.1]]])  # joint 3: unconfident, ignored
    mean, per = keypoint_displacement([ref], [cand], "heatmap", ["a", "b", "c"])
    assert mean == pytest.approx(2.5) and per == {"a": 5.0, "b": 0.0}
    # bottom-up: people come in any order; each reference person is matched to the nearest candidate
    ref2 = _poses([[[10, 10, 0.9]], [[100, 100, 0.9]]])
    cand2 = _poses([[[101, 100, 0.9]], [[10, 12, 0.9]]])
    mean2, _ = keypoint_displacement([ref2], [cand2], "centernet", ["a"])
    assert mean2 == pytest.approx(1.5)
    assert keypoint_displacement([ref], [cand], "heatmap", ["a", "b", "c"])[0] is not None
    none = _poses([[[10, 10, 0.0]]])
    assert keypoint_displacement([none], [none], "heatmap", ["a"]) == (None, {})


def test_gate_holds_out_the_coco_images_calibration_did_not_use(shared_data, tmp_path):
    import warnings

    from edgepose.calibration.dataset import CalibrationSet
    from edgepose.calibration.gate import resolve_val
    from edgepose.pipeline.preprocess import InputSpec
    from edgepose.runtimes.spec import ModelSpec

    spec = ModelSpec(kind="centernet", input=InputSpec(size=(64, 64)))
    ann = shared_data / "coco-mini" / "test_coco.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calib = CalibrationSet.from_source(ann, spec, size=3, progress=False)
        every = CalibrationSet.from_source(ann, spec, progress=False)  # all 4 images used → synthetic-val
    coco, name = resolve_val(None, calib, "centernet", tmp_path)
    assert len(calib.image_ids) == 3 and "held-out 1 images" in name
    assert coco.image_ids and not set(coco.image_ids) & set(calib.image_ids)
    assert coco.load_image(coco.image_ids[0]).ndim == 3  # images resolved from the original folder
    assert resolve_val(None, every, "centernet", tmp_path)[1].startswith("synthetic-val:")
