"""PoseTrack tracking metrics (MOTA, ID switches per joint, motmetrics): known answers on generated tracks, ignore
regions, the CLI on posetrack18-mini, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepose.eval.posetrack import accumulate, load_videos
from edgepose.testing import cli_error

pytest.importorskip("motmetrics", reason="motmetrics is not installed (pip install 'edgepose[eval]')")

K = 17


def _videos(frames: int = 6):
    """One video, two people 300 px apart, every joint labelled, head boxes 50 x 50 (head size 42 px)."""
    out = []
    for f in range(frames):
        people = []
        for tid, x in ((7, 100.0), (9, 400.0)):
            kps = np.zeros((K, 3), np.float32)
            kps[:, 0], kps[:, 1], kps[:, 2] = x + np.arange(K) * 3 + f, 200 + np.arange(K) * 10, 1
            people.append((tid, kps, [x, 150, 50, 50]))
        out.append({"id": f, "frame_id": f, "file_name": "", "labeled": True, "people": people, "ignore": []})
    return {"v": out}


def _predict(videos, ids=lambda f: [1, 2], shift=5.0):
    preds = {}
    for fr in videos["v"]:
        kps = np.stack([p[1] for p in fr["people"]]).copy()
        kps[..., 0] += shift  # 5 px off: within half a head size (21 px)
        kps[..., 2] = 0.9
        preds[fr["id"]] = (np.array(ids(fr["id"])), kps)
    return preds


def test_perfect_tracks_score_mota_1():
    stats = accumulate(_videos(), _predict(_videos()))
    assert stats["MOTA"] == 1.0 and stats["num_switches"] == 0 and stats["num_objects"] == 2 * K * 6


def test_swapped_ids_count_one_switch_per_person_and_joint():
    stats = accumulate(_videos(), _predict(_videos(), ids=lambda f: [1, 2] if f < 3 else [2, 1]))
    assert stats["num_switches"] == 2 * K and stats["MOTA"] == pytest.approx(1 - 2 * K / (2 * K * 6))


def test_far_off_joints_are_misses_and_false_positives():
    stats = accumulate(_videos(), _predict(_videos(), shift=30.0))  # beyond half a head size
    assert stats["num_misses"] == stats["num_false_positives"] == 2 * K * 6 and stats["MOTA"] == -1.0


def test_predictions_in_ignore_regions_are_not_counted():
    videos = _videos(1)
    preds = _predict(videos)
    extra = preds[0][1][:1].copy()
    extra[..., 0] += 1000  # a third person, unlabelled, inside an ignore region
    preds[0] = (np.array([1, 2, 3]), np.concatenate([preds[0][1], extra]))
    assert accumulate(videos, preds)["num_false_positives"] == K
    videos["v"][0]["ignore"] = [np.array([[1050, 0], [1300, 0], [1300, 500], [1050, 500]], np.float32)]
    assert accumulate(videos, preds)["num_false_positives"] == 0


def test_posetrack_mini_loads_and_scores(shared_data, capsys):
    from edgepose.cli import main

    ann = shared_data / "posetrack18-mini" / "annotations"
    videos = load_videos(ann / "val")
    assert sorted(videos) == ["003418", "009473", "012834"] and sum(len(v[0]["people"]) for v in videos.values()) == 14
    assert main(["eval", "movenet-multipose", "--data", f"posetrack:{ann / 'val'}", "--json", "--no-progress"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_objects"] == 182 and stats["num_videos"] == 3 and stats["num_switches"] == 0
    assert stats["num_misses"] < 182 and stats["MOTA"] <= 1.0  # it finds some of the labelled joints


def test_posetrack_bad_input(shared_data, tmp_path, capsys):
    ann = shared_data / "posetrack18-mini" / "annotations" / "val"
    assert "needs person boxes to track" in cli_error(["eval", "simplebaseline-mnv2s-edge", "--data",
                                                       f"posetrack:{ann}", "--no-progress"], capsys)
    assert "not found" in cli_error(["eval", "movenet-multipose", "--data", f"posetrack:{tmp_path / 'no'}"], capsys)
    (tmp_path / "x.json").write_text(json.dumps({"images": [{"id": 1}], "annotations": []}))
    assert "no vid_id / frame_id" in cli_error(["eval", "movenet-multipose", "--data",
                                                f"posetrack:{tmp_path / 'x.json'}:{tmp_path}"], capsys)


def test_posetrack_without_motmetrics_fails_before_loading_a_model(shared_data, monkeypatch, capsys):
    ann = shared_data / "posetrack18-mini" / "annotations" / "val"
    monkeypatch.setitem(__import__("sys").modules, "motmetrics", None)  # as if not installed
    msg = cli_error(["eval", "no-such-model", "--data", f"posetrack:{ann}", "--no-progress"], capsys)
    assert "motmetrics" in msg and "pip install 'edgepose[eval]'" in msg
