"""``edgepose run``: a bundle on a real video (PoseTrack clip), with a CenterNet person detector."""

from __future__ import annotations

import json

import cv2
import pytest

from edgepose.cli import main
from edgepose.testing import cli_error as _error


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    import edgepose
    from edgepose.models import create

    root = tmp_path_factory.mktemp("run-bundles")
    return {name: edgepose.export(create(name, weights="default"), target="onnx", out=root / name, log=None).path
            for name in ("simplebaseline-mnv2s-edge", "centernet-mnv2s")}


@pytest.fixture(scope="module")
def video(shared_data):
    (path,) = sorted((shared_data / "posetrack18-mini" / "videos").rglob("*.mp4"))
    return path


@pytest.mark.onnxruntime
def test_topdown_with_detector_writes_video_and_json(bundles, video, tmp_path, capsys):
    out, js = tmp_path / "out.mp4", tmp_path / "poses.jsonl"
    code = main(["run", str(bundles["simplebaseline-mnv2s-edge"]), "--detector", str(bundles["centernet-mnv2s"]),
                 "--source", str(video), "--out", str(out), "--json", str(js), "--threads", "1", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "5 frames" in printed and "FPS" in printed
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1280
    cap.release()
    lines = [json.loads(ln) for ln in js.read_text().splitlines()]
    assert [ln["frame"] for ln in lines] == [0, 1, 2, 3, 4]
    people = [p for ln in lines for p in ln["people"]]
    assert people and all(len(p["keypoints"]) == 51 for p in people)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "poses.jsonl"]  # no partial files left


@pytest.mark.onnxruntime
def test_max_frames_and_bottom_up(bundles, video, tmp_path, capsys):
    js = tmp_path / "p.jsonl"
    assert main(["run", str(bundles["centernet-mnv2s"]), "--source", str(video), "--max-frames", "2",
                 "--json", str(js), "--quiet"]) == 0
    assert len(js.read_text().splitlines()) == 2


@pytest.mark.onnxruntime
def test_bad_input(bundles, video, tmp_path, capsys):
    sb, cn = str(bundles["simplebaseline-mnv2s-edge"]), str(bundles["centernet-mnv2s"])
    assert "no such file" in _error(["run", cn, "--source", str(tmp_path / "nope.mp4")], capsys)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    out = tmp_path / "o.mp4"
    assert "could not open" in _error(["run", cn, "--source", str(garbage), "--out", str(out)], capsys)
    assert "expected a bottom-up" in _error(["run", sb, "--detector", sb, "--source", str(video)], capsys)
    assert "only with a top-down" in _error(["run", cn, "--detector", cn, "--source", str(video)], capsys)
    assert "--max-frames 0" in _error(["run", cn, "--source", str(video), "--max-frames", "0"], capsys)
    assert "csi://N" in _error(["run", cn, "--source", "csi://x"], capsys)
    assert not out.exists()
