"""``edgepose run``: a bundle on a real video (PoseTrack clip), with a CenterNet person detector."""

from __future__ import annotations

import json

import cv2
import numpy as np
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


class _Written:
    """A progress bar that counts the frames written (run_stream calls update() after each)."""

    n = 0

    def update(self):
        self.n += 1

    def wait(self, frames: int) -> None:
        import time

        end = time.monotonic() + 5
        while self.n < frames and time.monotonic() < end:
            time.sleep(0.005)


class _StoppedCamera:
    """A capture whose ``n``-th read brings Ctrl-C (or SIGTERM) along with its frame, once the frames before it are
    written (pipelined, the capture thread reads ahead of them)."""

    def __init__(self, video, n, signum, written):
        self.cap, self.n, self.signum, self.written, self.reads = cv2.VideoCapture(str(video)), n, signum, written, 0

    def read(self):
        import os

        self.reads += 1
        if self.reads == self.n:
            self.written.wait(self.n - 1)
            os.kill(os.getpid(), self.signum)
        return self.cap.read()


@pytest.mark.signals
@pytest.mark.onnxruntime
@pytest.mark.parametrize("pipelined", [False, True], ids=["sequential", "pipelined"])
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_keeps_the_frames_done(bundles, video, tmp_path, signame, pipelined):
    """A camera is stopped with Ctrl-C / SIGTERM: the loop ends after that frame (pipelined: the frame in progress,
    which may be the one before), the JSON lines and the video of the frames done stay, and the previous signal
    handlers are back."""
    import signal

    import edgepose
    from edgepose.pipeline.video import VideoOutput, run_stream

    js, out = tmp_path / "p.jsonl", tmp_path / "o.mp4"
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    written = _Written()
    with edgepose.load(bundles["centernet-mnv2s"]) as rt:
        writer = VideoOutput(out, 30.0, (1280, 720))
        stats = run_stream(rt, _StoppedCamera(video, 3, getattr(signal, signame), written), out=writer,
                           json_path=str(js), pipelined=pipelined, progress=written)
        writer.close(keep=True)
    n = stats["frames"]
    assert stats["stopped"] == signame and (n in (2, 3) if pipelined else n == 3)
    assert [json.loads(ln)["frame"] for ln in js.read_text().splitlines()] == list(range(n))
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == n
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4", "p.jsonl"]
    assert {s: signal.getsignal(s) for s in before} == before


class _StalledCamera:
    """The 2nd read stalls: the first Ctrl-C arrives while it blocks (once frame 0 is written), a second one
    interrupts it."""

    def __init__(self, video, written):
        self.cap, self.reads, self.written = cv2.VideoCapture(str(video)), 0, written

    def read(self):
        import os
        import signal

        self.reads += 1
        if self.reads == 2:
            self.written.wait(1)
            os.kill(os.getpid(), signal.SIGINT)  # first Ctrl-C: only a request, the read goes on blocking ...
            raise KeyboardInterrupt  # ... until the second Ctrl-C interrupts it
        return self.cap.read()


@pytest.mark.signals
@pytest.mark.onnxruntime
@pytest.mark.parametrize("pipelined", [False, True], ids=["sequential", "pipelined"])
def test_a_second_ctrl_c_in_a_stalled_read_still_keeps_the_outputs(bundles, video, tmp_path, pipelined):
    import edgepose
    from edgepose.pipeline.video import run_stream

    js = tmp_path / "p.jsonl"
    written = _Written()
    with edgepose.load(bundles["centernet-mnv2s"]) as rt:
        stats = run_stream(rt, _StalledCamera(video, written), json_path=str(js), pipelined=pipelined,
                           progress=written)
    assert stats["stopped"] == "SIGINT" and stats["frames"] == 1
    assert len(js.read_text().splitlines()) == 1


@pytest.mark.onnxruntime
def test_output_paths_are_checked_before_the_first_frame(bundles, video, tmp_path, capsys):
    cn = str(bundles["centernet-mnv2s"])
    (tmp_path / "adir").mkdir()
    assert "does not exist" in _error(["run", cn, "--source", str(video), "--json", str(tmp_path / "no" / "x.jsonl")],
                                      capsys)
    assert "is a directory" in _error(["run", cn, "--source", str(video), "--json", str(tmp_path / "adir")], capsys)
    assert "unsupported extension '.txt'" in _error(["run", cn, "--source", str(video), "--out",
                                                     str(tmp_path / "x.txt")], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]


def test_detector_boxes_use_min_score_and_drop_unusable_boxes():
    """--min-score replaces the detector's threshold; a box with no area or off the frame is dropped, not fatal."""
    from edgepose.pipeline.video import person_boxes
    from edgepose.runtimes.poses import Poses

    class Detector:
        def __call__(self, frame, score_threshold=None):
            self.threshold = score_threshold
            boxes = np.array([[10, 10, 50, 90], [30, 30, 30, 60], [700, 10, 800, 90], [-5, 0, 20, 40]], np.float32)
            return Poses(np.zeros((4, 17, 3), np.float32), np.array([0.9, 0.8, 0.7, 0.05], np.float32), boxes)

    det = Detector()
    got = person_boxes(det, np.zeros((100, 640, 3), np.uint8), 0.01)
    assert det.threshold == 0.01
    np.testing.assert_allclose(got, [[10, 10, 50, 90, 0.9], [-5, 0, 20, 40, 0.05]], rtol=1e-6)


def test_input_spec_takes_numpy_numbers_and_refuses_nonsense():
    from edgepose.errors import ConfigError
    from edgepose.pipeline.preprocess import InputSpec

    spec = InputSpec(size=(np.int64(96), 128), mean=tuple(np.float32([0.4, 0.4, 0.4])), padding=np.float32(1.25))
    assert spec.size == (96, 128) and isinstance(spec.size[0], int)
    for kw, match in ((dict(size=(96,)), "size"), (dict(size=(0, 128)), "size"), (dict(std=(0.2, 0, 0.2)), "std"),
                      (dict(layout="CHW"), "layout"), (dict(dtype="float16"), "dtype"), (dict(padding=0), "padding")):
        with pytest.raises(ConfigError, match=match):
            InputSpec(**{"size": (96, 128), **kw})


@pytest.mark.onnxruntime
def test_detect_every_n_finds_the_same_people_on_a_static_scene(bundles):
    """A still synthetic scene (3 people, the default models): with the detector every 3rd frame the frames between
    take their boxes from the tracks and give the same people, ids and keypoints as the detector on every frame."""
    import edgepose
    from edgepose.data.synthetic import render_sample
    from edgepose.pipeline.stages import FrameProcessor
    from edgepose.pipeline.track import PoseTracker, TrackOptions

    image = render_sample(np.random.default_rng(2), mode="multi", image_size=(640, 480), max_people=3)[0]
    with edgepose.load(bundles["simplebaseline-mnv2s-edge"], threads=2) as rt, \
            edgepose.load(bundles["centernet-mnv2s"], threads=2) as det:
        runs = {}
        for n in (1, 3):
            proc = FrameProcessor(rt, detector=det, tracker=PoseTracker(TrackOptions(high_score=0.3, low_score=0.1)),
                                  detect_every=n)
            runs[n] = [proc(image, i, i / 30) for i in range(6)]
            assert proc.detector_runs == (6 if n == 1 else 2)
    for every, sparse in zip(runs[1], runs[3]):
        assert len(every.poses) == 3 and sparse.ids.tolist() == every.ids.tolist() == [1, 2, 3]
        ok = (every.poses.keypoints[..., 2] > 0.3) & (sparse.poses.keypoints[..., 2] > 0.3)
        err = np.linalg.norm(every.poses.keypoints[..., :2] - sparse.poses.keypoints[..., :2], axis=-1)[ok]
        assert ok.mean() > 0.5 and np.median(err) < 4.0, (ok.mean(), np.median(err))


@pytest.mark.onnxruntime
def test_track_smooth_detect_every_cli(bundles, video, tmp_path, capsys):
    js, out = tmp_path / "p.jsonl", tmp_path / "o.avi"
    code = main(["run", str(bundles["simplebaseline-mnv2s-edge"]), "--detector", str(bundles["centernet-mnv2s"]),
                 "--source", str(video), "--json", str(js), "--out", str(out), "--track", "--smooth",
                 "--detect-every", "2", "--min-score", "0.2", "--threads", "1", "--quiet"])
    assert code == 0 and "tracks, detector on" in capsys.readouterr().out
    lines = [json.loads(ln) for ln in js.read_text().splitlines()]
    assert [ln["frame"] for ln in lines] == [0, 1, 2, 3, 4] and lines[0]["detected"]
    assert lines[1]["t"] == pytest.approx(1 / cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS), abs=1e-4)
    people = [p for ln in lines for p in ln["people"]]
    assert people and all(isinstance(p["track_id"], int) and p["track_id"] >= 1 for p in people)
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 5


@pytest.mark.onnxruntime
def test_video_bad_input(bundles, video, tmp_path, capsys):
    sb, cn = str(bundles["simplebaseline-mnv2s-edge"]), str(bundles["centernet-mnv2s"])
    src = ["--source", str(video)]
    assert "--detect-every 0: expected a whole number >= 1" in _error(["run", cn, *src, "--detect-every", "0"], capsys)
    assert "needs --detector and --track" in _error(["run", sb, "--detector", cn, *src, "--detect-every", "3"], capsys)
    assert "--smooth needs --track" in _error(["run", cn, *src, "--smooth"], capsys)
    assert "--track-patience -1" in _error(["run", cn, *src, "--track", "--track-patience", "-1"], capsys)
    assert "--smooth-cutoff 0.0: expected a frequency" in _error(["run", cn, *src, "--track", "--smooth",
                                                                  "--smooth-cutoff", "0"], capsys)
    assert "--smooth-beta nan" in _error(["run", cn, *src, "--track", "--smooth", "--smooth-beta", "nan"], capsys)
    assert "camera 7 could not be opened" in _error(["run", cn, "--source", "7"], capsys)


def _avi(path, frames: int) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for i in range(frames):
        w.write(np.full((240, 320, 3), 10 * i, np.uint8))
    w.release()


@pytest.mark.onnxruntime
@pytest.mark.parametrize("mode", ["--sequential", "--track"])
def test_a_source_that_stops_mid_stream_keeps_valid_outputs(bundles, tmp_path, capsys, mode):
    """A file cut in half (its header announces 20 frames, 6 can be read): a one-line error, exit code 2, and the
    JSON lines and video of the 6 frames in place and readable."""
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    _avi(whole, 20)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    js, out = tmp_path / "p.jsonl", tmp_path / "o.mp4"
    msg = _error(["run", str(bundles["centernet-mnv2s"]), "--source", str(cut), "--json", str(js), "--out", str(out),
                  mode, "--quiet"], capsys)
    assert "ended after 6 of the 20 frames" in msg
    assert [json.loads(ln)["frame"] for ln in js.read_text().splitlines()] == list(range(6))
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.avi", "o.mp4", "p.jsonl", "whole.avi"]


@pytest.mark.onnxruntime
def test_an_output_that_fails_mid_run_keeps_the_lines_before(bundles, video, tmp_path, capsys, monkeypatch):
    """The disk fills up at frame 3 (the 4th write fails): one-line error, the JSON lines of frames 0-2 whole, the
    video of the frames processed valid."""
    import errno
    import os

    import edgepose.pipeline.video as video_mod

    calls = {"n": 0}
    real_write = os.write

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == 4:
            real_write(fd, bytes(data)[:10])  # half a line reaches the disk, then it is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(video_mod.os, "write", write)
    js, out = tmp_path / "p.jsonl", tmp_path / "o.avi"
    msg = _error(["run", str(bundles["centernet-mnv2s"]), "--source", str(video), "--json", str(js), "--out", str(out),
                  "--quiet"], capsys)
    assert "writing frame 3 failed (No space left on device)" in msg and "keeps the 3 frames before" in msg
    assert [json.loads(ln)["frame"] for ln in js.read_text().splitlines()] == [0, 1, 2]
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) >= 3


def test_track_without_scipy_is_a_one_line_error_before_any_work(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "scipy", None)  # as if not installed
    msg = _error(["run", "no-such-bundle", "--source", "no-such.mp4", "--track"], capsys)
    assert "--track" in msg and "pip install 'edgepose[video]'" in msg
