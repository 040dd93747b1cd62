"""The camera / video loop behind ``edgepose run`` (device side: numpy + OpenCV + one backend).

Sources are in :mod:`edgepose.pipeline.sources`; the per-frame work (detector every N frames, pose model,
tracking, smoothing) and the pipelined threads in :mod:`edgepose.pipeline.stages`. This module runs them and
writes the outputs: the annotated video and one JSON line per frame, flushed as each frame is done. When the run
ends with an error after some frames (a stream that stops, a failing write), both outputs are still closed and
put in place holding those frames, and the error is raised.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.errors import ConfigError, InputError, OutputError
from edgepose.pipeline.draw import draw_poses
from edgepose.pipeline.sources import Source, SourceStopped, csi_pipeline, open_source  # noqa: F401 (public)
from edgepose.pipeline.stages import STAGES, FrameProcessor, person_boxes, run_pipelined  # noqa: F401 (public)
from edgepose.utils.signals import stop_requests


class VideoOutput:
    """An annotated video written to a temporary file and renamed into place when closed with ``keep``."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", "") else "MJPG"))
        self.writer = cv2.VideoWriter(str(self.tmp), fourcc, fps or 30.0, size)
        self.size, self.frames = tuple(size), 0
        if not self.writer.isOpened():
            raise ConfigError(f"--out {path}: OpenCV cannot write this video (expected a .mp4 or .avi path in a "
                              "writable folder)")

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:  # a camera that changed resolution: keep the file valid
            frame = cv2.resize(frame, self.size)
        self.writer.write(frame)
        self.frames += 1

    def close(self, keep: bool) -> None:
        self.writer.release()
        if keep:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class JsonLines:
    """One JSON line per frame, each written whole to the file (no buffering) in ``.NAME.partial`` until
    :meth:`close` puts it in place; a line that cannot be written whole is cut off again, so the file always
    holds complete lines."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            self.fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as e:
            raise OutputError(f"--json {path}: cannot create it ({e.strerror}); expected a writable file "
                              "path") from None
        self.lines = self.size = 0

    def write(self, record: dict) -> None:
        data = (json.dumps(record) + "\n").encode()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
                os.lseek(self.fd, self.size, os.SEEK_SET)
            raise OutputError(f"--json {self.path}: writing frame {record.get('frame')} failed ({e.strerror}); the "
                              f"file keeps the {self.lines} frames before") from None
        self.size += len(data)
        self.lines += 1

    def close(self, keep: bool) -> None:
        os.close(self.fd)
        if keep:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def frame_record(result) -> dict:
    """The JSON line of one processed frame: index, time (s), whether the detector ran, COCO-style people (with
    ``track_id`` when tracking)."""
    people = result.poses.to_coco_results(result.index)
    if result.ids is not None:
        for p, tid in zip(people, result.ids.tolist()):
            p["track_id"] = int(tid)
    return {"frame": result.index, "t": round(float(result.t), 4), "detected": bool(result.detected),
            "people": people}


class _Writer:
    """Draws and writes each processed frame (the write stage)."""

    def __init__(self, rt, out, jf, progress):
        self.rt, self.out, self.jf, self.progress = rt, out, jf, progress
        self.people = 0
        self.times: list[float] = []

    def __call__(self, result) -> None:
        self.people += len(result.poses)
        if self.out is not None:
            self.out.write(draw_poses(result.frame, result.poses, keypoints=self.rt.spec.keypoints, ids=result.ids,
                                      trails=result.trails, label=f"{self.rt.backend} {result.ms:.1f} ms"))
        if self.jf is not None:
            self.jf.write(frame_record(result))
        if self.progress is not None:
            self.progress.update()


def _sequential(source: Source, process, write, stop, *, max_frames: int | None = None) -> dict:
    n = 0
    while not stop.signal and (max_frames is None or n < max_frames):
        item = source.read()
        if item is None:
            break
        write(process(*item))
        n += 1
    return {"frames": n, "dropped": 0}


def run_stream(rt, cap, *, detector=None, out=None, json_path=None, max_frames=None, min_score=0.3,
               progress=None, tracker=None, smoother=None, detect_every: int = 1, pipelined: bool = False,
               live: bool = False, name: str = "the source") -> dict:
    """Run ``rt`` on the frames of ``cap`` → {"frames", "people", "dropped", "detector_runs", "ms": {stage: p50},
    "fps", "stopped"}; writes the annotated video ``out`` and JSON lines ``json_path`` when asked. "total" is the
    per-frame call (boxes, pose, tracking, smoothing); "fps" counts the whole loop: reading, drawing and writing
    frames too. ``pipelined`` overlaps reading, processing and writing in threads; with ``live`` stale frames are
    dropped (counted in "dropped").

    Ctrl-C or SIGTERM (the only way to stop a camera or a stream) ends the loop after the current frame, like the
    end of a video: the frames done so far are kept and ``stopped`` names the signal ("SIGINT" / "SIGTERM"; None at
    the end of the source). A second Ctrl-C stops at once, even inside a stalled read, and still keeps them.

    ``cap`` is released here (its ``release()``, when it has one), once no thread is reading from it."""
    source = Source(cap, live=live, name=name)
    jf = None
    try:
        process = FrameProcessor(rt, detector=detector, min_score=min_score, tracker=tracker, smoother=smoother,
                                 detect_every=detect_every)
        jf = JsonLines(json_path) if json_path else None
        write = _Writer(rt, out, jf, progress)
        done = {"dropped": 0}
        loop_start = time.perf_counter()
        with stop_requests() as stop:
            try:
                done = (run_pipelined if pipelined else _sequential)(source, process, write, stop,
                                                                     max_frames=max_frames)
            except KeyboardInterrupt:  # a second Ctrl-C (a stalled camera or stream): stop now, still keep outputs
                if not stop.signal:
                    raise
        wall = time.perf_counter() - loop_start
    finally:
        source.close()
        if jf is not None:
            jf.close(keep=jf.lines > 0)
    n = process.frames
    if n == 0 and stop.signal:
        raise KeyboardInterrupt
    if n == 0:
        raise InputError("the source gave no frames; expected a video with at least one readable frame")
    return {"frames": n, "people": write.people, "dropped": done["dropped"], "detector_runs": process.detector_runs,
            "ms": process.medians(), "fps": n / wall, "stopped": stop.signal}
