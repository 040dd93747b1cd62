"""The video loop with a fake source and model: pipelined threads (FPS follows the slowest stage, a live source
drops stale frames and counts them, every processed frame written), errors mid-stream, picamera2, a short soak."""

from __future__ import annotations

import json
import sys
import time
import types

import pytest
from track_scenes import FakeBottomUp, FakeSource

from edgepose.errors import BackendUnavailable, ConfigError, OutputError
from edgepose.pipeline.smooth import PoseSmoother
from edgepose.pipeline.sources import Source, SourceStopped, open_source
from edgepose.pipeline.stages import FrameProcessor, run_pipelined
from edgepose.pipeline.track import PoseTracker, TrackOptions
from edgepose.pipeline.video import run_stream


class _NoStop:
    signal = None


def _slow_writer(ms: float, done: list):
    def write(result):
        time.sleep(ms / 1e3)
        done.append(result.index)
    return write


def _process(ms: float):
    return FrameProcessor(FakeBottomUp(ms=ms), tracker=PoseTracker(TrackOptions(high_score=0.2, low_score=0.1)))


def test_pipelined_fps_follows_the_slowest_stage():
    """Read 10 ms, process 15 ms, write 10 ms: one thread takes their sum per frame (35 ms), three threads about the
    slowest (15 ms); asserted: pipelined below 0.7x the sequential time, no frame lost or reordered."""
    from edgepose.pipeline.video import _sequential

    walls = {}
    for mode in ("sequential", "pipelined"):
        done: list[int] = []
        source = Source(FakeSource(30, read_ms=10))
        start = time.perf_counter()
        run = _sequential if mode == "sequential" else run_pipelined
        stats = run(source, _process(15), _slow_writer(10, done), _NoStop())
        walls[mode] = time.perf_counter() - start
        assert stats == {"frames": 30, "dropped": 0} and done == list(range(30))
    assert walls["pipelined"] < 0.7 * walls["sequential"], walls


def test_a_live_source_keeps_the_newest_frame_and_counts_the_dropped():
    """A camera at ~200 FPS, processing at ~50: stale frames are dropped (counted), the ones processed are the
    newest, in order, every one of them is written under its index in the source (the gaps show the frames dropped),
    and the last frame the camera gave before it stopped is processed, not replaced by the end."""
    done: list[int] = []
    source = Source(FakeSource(100, read_ms=5), live=True)
    seen = []

    def process(frame, index, t):
        seen.append(int(frame[0, 0, 0]))
        return _process(20)(frame, index, t)

    with pytest.raises(SourceStopped, match="stopped giving frames after 100"):
        run_pipelined(source, process, _slow_writer(0, done), _NoStop())
    assert len(done) == len(seen) < 60 and done == seen
    assert seen == sorted(seen) and seen[-1] == 99  # the newest frames, never an old one after a new one


def test_processed_frames_are_written_when_the_source_fails():
    done: list[int] = []
    with pytest.raises(OSError, match="unplugged"):
        run_pipelined(Source(FakeSource(50, fail_at=7)), _process(0), _slow_writer(1, done), _NoStop())
    assert done == list(range(7))


def test_a_failing_write_stops_the_run_with_its_error():
    def write(result):
        if result.index == 4:
            raise OutputError("--json x: writing frame 4 failed (No space left on device)")

    with pytest.raises(OutputError, match="frame 4"):
        run_pipelined(Source(FakeSource(200)), _process(0), write, _NoStop())


def test_run_stream_json_lines_with_track_ids_and_the_truncated_source_error(tmp_path):
    """run_stream pipelined with tracking and smoothing: one line per frame with track ids; a file ending before
    its announced frame count is an error, and the JSON lines of the frames done are in place."""
    js = tmp_path / "p.jsonl"
    cap = FakeSource(40)
    cap.get = lambda prop: {5: 30.0, 7: 60.0}.get(prop, 0.0)  # FPS 30; the header says 60 frames, 40 come
    with pytest.raises(SourceStopped, match="ended after 40 of the 60 frames"):
        run_stream(FakeBottomUp(), cap, json_path=str(js), tracker=PoseTracker(), smoother=PoseSmoother(),
                   pipelined=True)
    lines = [json.loads(ln) for ln in js.read_text().splitlines()]
    assert [ln["frame"] for ln in lines] == list(range(40))
    assert lines[30]["t"] == pytest.approx(1.0)
    assert {p["track_id"] for ln in lines for p in ln["people"]} == {1, 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]


def test_frame_processor_refuses_inconsistent_options():
    rt = FakeBottomUp()
    with pytest.raises(ConfigError, match="--detect-every 0"):
        FrameProcessor(rt, detect_every=0)
    with pytest.raises(ConfigError, match="needs --detector and --track"):
        FrameProcessor(rt, detect_every=3, tracker=PoseTracker())
    with pytest.raises(ConfigError, match="smoothing needs tracking"):
        FrameProcessor(rt, smoother=PoseSmoother())


class _Picamera2:
    """picamera2's surface as edgepose uses it, for a machine without a Raspberry Pi camera."""

    def __init__(self, sensor):
        if sensor > 0:
            raise IndexError("list index out of range")
        self.frames = 0

    def create_video_configuration(self, main):
        return {"main": main}

    def configure(self, config):
        self.size = config["main"]["size"]

    def start(self):
        pass

    def capture_array(self, stream):
        import numpy as np

        self.frames += 1
        return np.full((self.size[1], self.size[0], 3), self.frames, np.uint8)

    def stop(self):
        pass

    def close(self):
        pass


def test_picamera2_source(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(BackendUnavailable, match="picamera2"):
        open_source("picam://0")
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=_Picamera2))
    cam = open_source("picam://0")
    source = Source(cam, live=True)
    frame, index, t = source.read()
    assert frame.shape == (720, 1280, 3) and frame[0, 0, 0] == 1 and index == 0 and t >= 0
    cam.release()
    with pytest.raises(Exception, match="picam://1: picamera2 could not open it"):
        open_source("picam://1")
    with pytest.raises(Exception, match="picam://N with a sensor number"):
        open_source("picam://x")


def test_short_soak_keeps_memory_flat_and_every_line(tmp_path):
    """3,000 frames (the soak's shape: --track --smooth, pipelined, JSON lines) through a fake model whose people
    leave and come back every 240 frames (26 tracks begin and end): RSS grows less than 2 MB after a 500-frame
    warm-up, ended tracks leave no state behind, and there is one line per frame."""
    from edgepose.pipeline.memory import rss_mb

    js = tmp_path / "soak.jsonl"
    rss = {}

    class Progress:
        n = 0

        def update(self):
            self.n += 1
            if self.n in (500, 3000):
                rss[self.n] = rss_mb()

    tracker, smoother = PoseTracker(), PoseSmoother()
    stats = run_stream(FakeBottomUp(), FakeSource(3000), json_path=str(js), tracker=tracker, smoother=smoother,
                       pipelined=True, progress=Progress())
    assert stats["frames"] == 3000 and stats["dropped"] == 0
    assert tracker.next_id == 1 + 2 * 13 and len(tracker.tracks) <= 2 and set(smoother.filters) <= tracker.live_ids
    assert sum(1 for _ in js.open()) == 3000
    assert rss[3000] - rss[500] < 2.0, rss


def test_time_window_keeps_the_last_values_in_fixed_memory():
    from edgepose.pipeline.stages import TimeWindow

    w = TimeWindow(4)
    assert len(w) == 0 and w.median() == 0.0
    for v in (100, 1, 2, 3, 4, 5):
        w.append(v)
    assert len(w) == 4 and w.median() == 3.5 and w.values.nbytes == 32


def test_detect_every_n_loses_a_person_who_left_and_runs_the_detector_early():
    """The person walks out at frame 5; the detector is due every 10 frames. On frame 5 the box from the track
    holds only background (person score 0.045): the person is left out, not written as a ghost, the track is lost,
    and the detector runs on frame 6 instead of frame 10; the track ends after its patience."""
    from track_scenes import FakeTopDown, frame_with_index

    rt = FakeTopDown(leave=5)
    proc = FrameProcessor(rt, detector=rt.detector, tracker=PoseTracker(TrackOptions(patience=3)), detect_every=10)
    results = [proc(frame_with_index(i), i, i / 30) for i in range(12)]
    assert [len(r.poses) for r in results] == [1] * 5 + [0] * 7
    assert all(r.ids.tolist() == [1] for r in results[:5])
    assert [r.detected for r in results[:7]] == [True, False, False, False, False, False, True]
    assert proc.tracker.tracks == [] and proc.tracker.ended == 1


def test_trails_are_drawn_as_they_were_after_the_frame(monkeypatch):
    """The writer draws frame 0 after frame 1 was processed (pipelined): it must draw frame 0's trails (one point
    per track), not the tracker's state of then (two points, one from the future)."""
    from track_scenes import frame_with_index

    import edgepose.pipeline.video as video_mod

    drawn = []
    monkeypatch.setattr(video_mod, "draw_poses", lambda frame, poses, **kw: drawn.append(kw["trails"]) or frame)
    rt = FakeBottomUp()
    proc = FrameProcessor(rt, tracker=PoseTracker())
    first, second = proc(frame_with_index(0), 0, 0.0), proc(frame_with_index(1), 1, 1 / 30)
    write = video_mod._Writer(rt, types.SimpleNamespace(write=lambda frame: None), None, None)
    write(first)
    write(second)
    assert [sorted((tid, len(p)) for tid, p in d.items()) for d in drawn] == [[(1, 1), (2, 1)], [(1, 2), (2, 2)]]


def test_max_frames_counts_the_frames_processed_from_a_live_source():
    """--max-frames 5 on a camera faster than the processing: 5 frames are processed and written, however many the
    camera gave (and dropped) meanwhile."""
    done: list[int] = []
    stats = run_pipelined(Source(FakeSource(1000, read_ms=2), live=True), _process(15), _slow_writer(0, done),
                          _NoStop(), max_frames=5)
    assert stats["frames"] == 5 and len(done) == 5 and stats["dropped"] > 0 and done == sorted(done)


class _StallingStream:
    """A stream whose 2nd read stalls (until ``unblock``) after Ctrl-C was pressed; it records a release that
    comes while a read is still inside the capture (a native crash with a real RTSP / CSI capture)."""

    def __init__(self):
        import threading

        self.reads, self.in_read, self.unblock = 0, False, threading.Event()
        self.released = self.released_in_read = False

    def read(self):
        import os
        import signal

        from track_scenes import frame_with_index

        self.reads += 1
        if self.reads == 2:
            self.in_read = True
            time.sleep(0.2)  # frame 0 is processed meanwhile
            os.kill(os.getpid(), signal.SIGINT)
            self.unblock.wait(5)
            self.in_read = False
        return True, frame_with_index(self.reads - 1)

    def get(self, prop):
        return 0.0

    def release(self):
        self.released, self.released_in_read = True, self.in_read


@pytest.mark.signals
def test_a_capture_stalled_in_read_is_released_only_after_the_read_returns(monkeypatch):
    """Ctrl-C while the capture thread is stuck in read(): the run ends (the join times out), but the capture is
    released when that read returns, not under it."""
    import threading

    import edgepose.pipeline.sources as sources_mod
    import edgepose.pipeline.stages as stages_mod
    from edgepose.commands.run import _run

    cap = _StallingStream()
    monkeypatch.setattr(sources_mod, "open_source", lambda source: cap)
    monkeypatch.setattr(stages_mod, "READER_JOIN_S", 0.05)
    args = types.SimpleNamespace(source="rtsp://cam", out=None, json=None, max_frames=None, quiet=True,
                                 min_score=0.3, detect_every=1, sequential=False)
    stats = _run(args, FakeBottomUp(), None, None, None)
    assert stats["stopped"] == "SIGINT" and stats["frames"] == 1
    assert not cap.released  # the read is still in progress
    cap.unblock.set()
    for t in threading.enumerate():
        if t.name == "edgepose-capture":
            t.join(2)
    assert cap.released and not cap.released_in_read


@pytest.mark.signals
def test_ctrl_c_while_waiting_for_the_writer_lets_it_finish_first():
    """Ctrl-C lands while the run waits for the writer's last frames: the KeyboardInterrupt comes out only after
    the writer wrote them (the outputs are closed after run_pipelined returns)."""
    import os
    import signal

    done: list[int] = []
    processed = []

    def process(frame, index, t):
        processed.append(index)
        return types.SimpleNamespace(index=index)

    def write(result):
        if not done:
            while len(processed) < 3:
                time.sleep(0.01)
            time.sleep(0.1)  # the processing thread is waiting for the writer by now
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        done.append(result.index)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_pipelined(Source(FakeSource(3)), process, write, _NoStop())
        assert done == [0, 1, 2]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_is_live_tells_cameras_and_streams_from_files():
    from edgepose.pipeline.sources import is_live

    assert all(map(is_live, ["0", "rtsp://cam/stream", "csi://0", "picam://0", "http://cam:8080/video"]))
    assert not any(map(is_live, ["clip.mp4", "http://host/videos/clip.mp4", "https://host/a.MOV?token=1"]))
