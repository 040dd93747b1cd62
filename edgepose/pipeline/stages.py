"""The per-frame work of ``edgepose run`` and the threads that overlap it (device side: numpy + OpenCV).

:class:`FrameProcessor` does one frame: person boxes (the detector, or every ``detect_every`` frames the detector
and in between each track's box from its last pose, as top-down video systems do), the pose model, tracking and
smoothing. :func:`run_pipelined` runs capture, that processing and drawing / writing in three threads joined by
bounded queues, so that the frame rate follows the slowest stage instead of their sum: a live source keeps only
its newest frame (a frame the processing was too slow for is dropped and counted), a file is processed frame by
frame (the reader waits for the queue), and every processed frame is written.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from edgepose.errors import ConfigError
from edgepose.pipeline.preprocess import usable_boxes
from edgepose.poses import Poses

STAGES = ("detect", "preprocess", "inference", "decode", "track")
READER_JOIN_S = 2.0  # how long the end of a run waits for a capture thread stalled in read()
WINDOW = 10_000  # per-frame times kept for the medians: a camera running for days keeps its memory flat


class TimeWindow:
    """The last ``size`` values in a preallocated array (a ring): memory fixed from the first frame on."""

    def __init__(self, size: int = WINDOW):
        self.values = np.zeros(size)
        self.count = 0

    def append(self, value: float) -> None:
        self.values[self.count % len(self.values)] = value
        self.count += 1

    def __len__(self) -> int:
        return min(self.count, len(self.values))

    def median(self) -> float:
        return float(np.median(self.values[:len(self)])) if self.count else 0.0


def person_boxes(detector, frame: np.ndarray, min_score: float) -> np.ndarray | None:
    """(N, 5) xyxy + score from a bottom-up detector bundle (None without one): the people scoring >= ``min_score``
    (the detector's own threshold is not applied on top), less boxes a top-down crop cannot use (not finite, no
    area, or outside the frame), so that one odd detection does not end a video run."""
    if detector is None:
        return None
    found = detector(frame, score_threshold=min_score)
    keep = usable_boxes(found.boxes, frame.shape)
    return np.concatenate([found.boxes[keep], found.scores[keep, None]], axis=1).astype(np.float32)


def check_detect_every(detect_every, *, detector: bool, tracker: bool) -> None:
    """The detector schedule's one check (the CLI's, before any work, and :class:`FrameProcessor`'s)."""
    if isinstance(detect_every, bool) or not isinstance(detect_every, (int, np.integer)) or detect_every < 1:
        raise ConfigError(f"--detect-every {detect_every!r}: expected a whole number >= 1 (1: the detector runs "
                          "on every frame)")
    if detect_every > 1 and not (detector and tracker):
        raise ConfigError(f"--detect-every {detect_every} needs --detector and --track (between detector runs the "
                          "person boxes come from the tracks); expected --detect-every 1 without them")


@dataclass
class FrameResult:
    """One processed frame: its people (with track ids when tracking; -1 never appears, untracked people are
    left out) and whether the detector ran on it."""

    index: int  # in the source: a live source's dropped frames leave gaps (the JSON "frame")
    t: float
    frame: np.ndarray
    poses: Poses
    ids: np.ndarray | None
    detected: bool
    ms: float  # the per-frame call: boxes + pose + tracking + smoothing
    trails: dict | None = None  # {track id: (P, 2) centres} as they were after this frame (drawn by the writer)


class FrameProcessor:
    """Boxes → poses → track ids → smoothed keypoints for one frame (see the module docstring)."""

    def __init__(self, rt, *, detector=None, min_score: float = 0.3, tracker=None, smoother=None,
                 detect_every: int = 1):
        check_detect_every(detect_every, detector=detector is not None, tracker=tracker is not None)
        if smoother is not None and tracker is None:
            raise ConfigError("smoothing needs tracking (a filter follows one person's joints); expected --smooth "
                              "together with --track")
        if detector is not None and rt.spec.bottom_up:
            raise ConfigError("a detector was given for a bottom-up (centernet) bundle, which finds people itself; "
                              "expected a detector only for a top-down bundle")
        self.rt, self.detector = rt, detector
        # with a tracker, people down to its low score are looked for: they may continue a track (ByteTrack)
        self.min_score = min(min_score, tracker.options.low_score) if tracker is not None else min_score
        self.bottomup_score = tracker.options.low_score if tracker is not None and rt.spec.bottom_up else None
        self.tracker, self.smoother, self.detect_every = tracker, smoother, int(detect_every)
        self.times = {s: TimeWindow() for s in (*STAGES, "total")}
        self.since_detect = None  # frames since the detector last ran (None: never)
        self.detector_runs = 0
        self.frames = 0

    def _due(self) -> bool:
        """The detector runs on schedule, and early when the last frame lost a track or there is no track."""
        if self.since_detect is None or self.since_detect + 1 >= self.detect_every:
            return True
        return any(t.lost == 1 for t in self.tracker.tracks) or not any(t.lost == 0 for t in self.tracker.tracks)

    def __call__(self, frame: np.ndarray, index: int, t: float) -> FrameResult:
        start = time.perf_counter()
        detected = self.detector is not None and (self.tracker is None or self._due())
        if detected:
            boxes = person_boxes(self.detector, frame, self.min_score)
            self.since_detect, self.detector_runs = 0, self.detector_runs + 1
        elif self.detector is not None:
            boxes = self.tracker.boxes(frame_shape=frame.shape)[0]
            self.since_detect += 1
        else:
            boxes = None
        detect = time.perf_counter() - start
        self.rt.stage_times = dict.fromkeys(STAGES[1:4], 0.0)
        try:
            poses = self.rt(frame, score_threshold=self.bottomup_score) if boxes is None else self.rt(frame, boxes)
            stage = dict(self.rt.stage_times)
        finally:
            self.rt.stage_times = None
        mark = time.perf_counter()
        poses, ids = self._track(poses, boxes, t, detected)
        # the writer thread draws this frame later: the trails are copied now, not read from the live tracker then
        trails = self.tracker.trails() if self.tracker is not None else None
        now = time.perf_counter()
        for s, v in (("detect", detect), *stage.items(), ("track", now - mark), ("total", now - start)):
            self.times[s].append(v * 1e3)
        self.frames += 1
        return FrameResult(index, t, frame, poses, ids, detected, (now - start) * 1e3, trails)

    def _track(self, poses: Poses, boxes, t: float, detected: bool) -> tuple[Poses, np.ndarray | None]:
        if self.tracker is None:
            return poses, None
        ids = self.tracker.update(poses, box_scores=None if boxes is None else boxes[:, 4],
                                  from_tracks=boxes is not None and not detected)
        keep = ids >= 0
        poses, ids = Poses(poses.keypoints[keep], poses.scores[keep], poses.boxes[keep]), ids[keep]
        if self.smoother is not None:
            kps = self.smoother(poses.keypoints, poses.boxes, ids, t)
            self.smoother.retain(self.tracker.live_ids)
            poses = Poses(kps, poses.scores, poses.boxes)
        return poses, ids

    def medians(self) -> dict[str, float]:
        return {s: w.median() for s, w in self.times.items()}


class _Latest:
    """A one-frame mailbox for a live source: a new frame replaces one not taken yet (counted as dropped). The end
    (``_END`` or the source's error) is kept apart and handed out after the frame still waiting, never instead."""

    def __init__(self):
        self.cond = threading.Condition()
        self.item, self.has, self.dropped = None, False, 0
        self.final = None

    def put(self, item, timeout=None) -> None:
        with self.cond:
            if item is _END or isinstance(item, BaseException):
                if self.final is None:
                    self.final = item
            elif self.final is None:
                self.dropped += self.has
                self.item, self.has = item, True
            self.cond.notify()

    def get(self, timeout=None):
        with self.cond:
            if not self.cond.wait_for(lambda: self.has or self.final is not None, timeout):
                raise queue.Empty
            if not self.has:
                return self.final
            item, self.item, self.has = self.item, None, False
            return item


_END = object()


def _put(q, item, halt) -> bool:
    """Put into a bounded queue, waiting while it is full until ``halt()`` is true (→ False)."""
    while not halt():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _capture(source, frames_q, halt: threading.Event) -> None:
    try:
        while not halt.is_set():
            item = source.read()
            if item is None:
                break
            if not _put(frames_q, item, halt.is_set):
                return
        _put(frames_q, _END, halt.is_set)
    except BaseException as e:  # a stopped stream, a failing camera: handed to the processing thread
        _put(frames_q, e, halt.is_set)


def _writer(results_q, write, errors: list, finished: threading.Event) -> None:
    try:
        while True:
            item = results_q.get()
            if item is _END:
                return
            if errors:
                continue  # drain after a failed write; the processing thread raises it
            try:
                write(item)
            except BaseException as e:
                errors.append(e)
    finally:
        finished.set()


def _finish(results_q, finished: threading.Event, reader: threading.Thread) -> bool:
    """Let the writer write every processed frame and stop, even through Ctrl-C (the caller closes the outputs
    after this: a writer left running would write into closed files) → whether Ctrl-C came meanwhile. The writer's
    end is its ``finished`` event, not ``Thread.join()``: a join interrupted by Ctrl-C can mark a running thread
    stopped (CPython bpo-45274's fix)."""
    interrupted, sent = False, False
    while not sent:
        try:
            results_q.put(_END)  # the writer drains what was processed, then stops
            sent = True
        except KeyboardInterrupt:
            interrupted = True
    while True:
        try:
            if finished.wait(0.1):
                break
        except KeyboardInterrupt:
            interrupted = True
    try:
        # a capture stalled in read() is a daemon thread: it does not hold the exit, and Source.close() leaves the
        # release of the capture to it
        reader.join(timeout=READER_JOIN_S)
    except KeyboardInterrupt:
        interrupted = True
    return interrupted


def run_pipelined(source, process, write, stop, *, depth: int = 4, max_frames: int | None = None) -> dict:
    """Capture (``source.read()`` → (frame, index, t) or None), ``process(frame, index, t)`` → result and
    ``write(result)`` in three threads with bounded queues of ``depth`` (a live source: a one-frame mailbox), until
    the source ends, ``stop.signal`` or ``max_frames`` frames processed. Returns {"frames", "dropped"}; an exception
    from any stage is raised here after every processed frame is written."""
    frames_q = _Latest() if source.live else queue.Queue(maxsize=depth)
    results_q: queue.Queue = queue.Queue(maxsize=depth)
    halt, finished, errors = threading.Event(), threading.Event(), []
    reader = threading.Thread(target=_capture, args=(source, frames_q, halt), name="edgepose-capture", daemon=True)
    writer = threading.Thread(target=_writer, args=(results_q, write, errors, finished), name="edgepose-write",
                              daemon=True)
    reader.start()
    writer.start()
    n = 0
    try:
        while not stop.signal and not errors and (max_frames is None or n < max_frames):
            try:
                item = frames_q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            result = process(*item)
            n += 1
            _put(results_q, result, lambda: bool(errors))  # a failed write stops the run: see below
    finally:
        halt.set()
        interrupted = _finish(results_q, finished, reader)
    if interrupted:
        raise KeyboardInterrupt
    if errors:
        raise errors[0]
    return {"frames": n, "dropped": getattr(frames_q, "dropped", 0)}
