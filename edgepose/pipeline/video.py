"""The camera / video loop behind ``edgepose run`` (device side: numpy + OpenCV + one backend).

Sources: a video file, a camera index (``0``), a network stream (``rtsp://``, ``http://``) or a Jetson CSI
camera (``csi://0``: a GStreamer ``nvarguscamerasrc`` pipeline, which needs OpenCV built with GStreamer, as
JetPack's is). A top-down bundle needs person boxes: ``detector`` (a bottom-up bundle, e.g. the CenterNet
default) finds them per frame; without one the whole frame is one person's box.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edgepose.errors import ConfigError, InputError
from edgepose.pipeline.draw import draw_poses
from edgepose.pipeline.preprocess import usable_boxes
from edgepose.utils.signals import stop_requests

STAGES = ("detect", "preprocess", "inference", "decode")


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    """GStreamer pipeline for a Jetson CSI camera (Argus) delivering BGR frames to OpenCV's appsink."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, height={height}, "
            f"framerate={fps}/1 ! nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
            "appsink drop=true max-buffers=1")


def open_source(source: str) -> cv2.VideoCapture:
    """A cv2.VideoCapture for ``source``; one-line errors for what cannot be opened."""
    if source.startswith("csi://"):
        try:
            cap = cv2.VideoCapture(csi_pipeline(int(source[6:] or 0)), cv2.CAP_GSTREAMER)
        except ValueError:
            raise InputError(f"--source {source}: expected csi://N with a sensor number N") from None
    elif source.isdigit():
        cap = cv2.VideoCapture(int(source))
    elif "://" in source:
        cap = cv2.VideoCapture(source)
    else:
        if Path(source).is_dir():
            raise InputError(f"--source {source} is a directory; expected a video file, a camera index, rtsp://... "
                             "or csi://N")
        if not Path(source).is_file():
            raise InputError(f"--source {source}: no such file; expected a video file, a camera index, "
                             "rtsp://... or csi://N")
        cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        hint = " (OpenCV needs GStreamer support for CSI cameras)" if source.startswith("csi://") else ""
        raise InputError(f"--source {source}: OpenCV could not open it{hint}; expected a readable video, camera "
                         "or stream")
    return cap


def frames(cap: cv2.VideoCapture, max_frames: int | None = None) -> Iterator[np.ndarray]:
    n = 0
    while max_frames is None or n < max_frames:
        ok, frame = cap.read()
        if not ok:
            return
        n += 1
        yield frame


class VideoOutput:
    """An annotated video written to a temporary file and renamed into place when closed without error."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", "") else "MJPG"))
        self.writer = cv2.VideoWriter(str(self.tmp), fourcc, fps or 30.0, size)
        if not self.writer.isOpened():
            raise ConfigError(f"--out {path}: OpenCV cannot write this video (expected a .mp4 or .avi path in a "
                              "writable folder)")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def close(self, keep: bool) -> None:
        self.writer.release()
        if keep:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def person_boxes(detector, frame: np.ndarray, min_score: float) -> np.ndarray | None:
    """(N, 5) xyxy + score from a bottom-up detector bundle (None without one): the people scoring >= ``min_score``
    (the detector's own threshold is not applied on top), less boxes a top-down crop cannot use (not finite, no
    area, or outside the frame), so that one odd detection does not end a video run."""
    if detector is None:
        return None
    found = detector(frame, score_threshold=min_score)
    keep = usable_boxes(found.boxes, frame.shape)
    return np.concatenate([found.boxes[keep], found.scores[keep, None]], axis=1).astype(np.float32)


def _one_frame(rt, detector, frame, min_score: float, times: dict):
    """Detect (when a detector is given) and run the pose model on one frame; appends its stage times in ms."""
    start = time.perf_counter()
    boxes = person_boxes(detector, frame, min_score)
    detect = time.perf_counter() - start
    rt.stage_times = dict.fromkeys(STAGES[1:], 0.0)
    poses = rt(frame) if boxes is None else rt(frame, boxes)
    times["total"].append((time.perf_counter() - start) * 1e3)
    times["detect"].append(detect * 1e3)
    for s in STAGES[1:]:
        times[s].append(rt.stage_times.get(s, 0.0) * 1e3)
    return poses


def run_stream(rt, cap, *, detector=None, out=None, json_path=None, max_frames=None, min_score=0.3,
               progress=None) -> dict:
    """Run ``rt`` on every frame → {"frames", "people", "ms": {stage: p50}, "fps", "stopped"}; writes the annotated
    video and one JSON line per frame (frame index, COCO-style people) when asked. "total" is the per-frame call
    (detect + pose); "fps" counts the whole loop: reading, drawing and writing frames too.

    Ctrl-C or SIGTERM (the only way to stop a camera or a stream) ends the loop after the current frame, like the
    end of a video: the frames done so far are kept and ``stopped`` names the signal ("SIGINT" / "SIGTERM"; None at
    the end of the source). A second Ctrl-C stops at once, even inside a stalled read, and still keeps them."""
    if detector is not None and rt.spec.kind == "centernet":
        raise ConfigError("a detector was given for a bottom-up (centernet) bundle, which finds people itself; "
                          "expected a detector only for a top-down bundle")
    times = {s: [] for s in (*STAGES, "total")}
    people = 0
    partial = Path(json_path).with_name(f".{Path(json_path).name}.partial") if json_path else None
    jf = open(partial, "w") if partial else None  # noqa: SIM115 (closed in finally, renamed on success)
    ok = False
    loop_start = time.perf_counter()
    try:
        with stop_requests() as stop:
            try:
                for i, frame in enumerate(frames(cap, max_frames)):
                    poses = _one_frame(rt, detector, frame, min_score, times)
                    people += len(poses)
                    if out is not None:
                        out.write(draw_poses(frame, poses, keypoints=rt.spec.keypoints,
                                             label=f"{rt.backend} {times['total'][-1]:.1f} ms"))
                    if jf is not None:
                        jf.write(json.dumps({"frame": i, "people": poses.to_coco_results(i)}) + "\n")
                    if progress is not None:
                        progress.update()
                    if stop.signal:  # Ctrl-C / SIGTERM: end here like the end of a video, outputs kept
                        break
            except KeyboardInterrupt:  # a second Ctrl-C (a stalled camera or stream): stop now, still keep outputs
                if not stop.signal:
                    raise
        ok = True
        wall = time.perf_counter() - loop_start
    finally:
        rt.stage_times = None
        if jf is not None:
            jf.close()
            if ok and times["total"]:
                os.replace(partial, json_path)
            else:
                partial.unlink(missing_ok=True)
    n = len(times["total"])
    if n == 0 and stop.signal:
        raise KeyboardInterrupt
    if n == 0:
        raise InputError("the source gave no frames; expected a video with at least one readable frame")
    med = {s: float(np.median(v)) for s, v in times.items()}
    return {"frames": n, "people": people, "ms": med, "fps": n / wall, "stopped": stop.signal}
