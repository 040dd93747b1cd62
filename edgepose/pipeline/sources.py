"""Frame sources for ``edgepose run`` (device side: numpy + OpenCV; picamera2 only when present).

``--source`` takes a video file, a camera index (``0``), a network stream (``rtsp://``, ``http://``), a Jetson CSI
camera (``csi://0``: a GStreamer ``nvarguscamerasrc`` pipeline, which needs OpenCV built with GStreamer, as
JetPack's is) or a Raspberry Pi camera (``picam://0`` through picamera2, imported only then). A :class:`Source`
gives ``(frame, source index, timestamp in seconds)``: a file's timestamps are its own (frame index / FPS), a live
source's come from the clock at capture. A live source that stops giving frames, or a file that ends before the
frame count its header announces, is an error (:class:`SourceStopped`) once the frames before are done.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.errors import BackendUnavailable, InputError

EXPECTED = "a video file, a camera index, rtsp://..., csi://N or picam://N"


class SourceStopped(InputError):
    """A camera or stream stopped giving frames, or a file ended before its announced frame count."""


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    """GStreamer pipeline for a Jetson CSI camera (Argus) delivering BGR frames to OpenCV's appsink."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, height={height}, "
            f"framerate={fps}/1 ! nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
            "appsink drop=true max-buffers=1")


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs a WARN line per backend it tries for a camera that is not there; the error we raise says it."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def _sensor(source: str, scheme: str) -> int:
    tail = source[len(scheme):] or "0"
    if not tail.isdigit():
        raise InputError(f"--source {source}: expected {scheme}N with a sensor number N")
    return int(tail)


def open_source(source: str) -> cv2.VideoCapture:
    """A cv2.VideoCapture for ``source``; one-line errors for what cannot be opened."""
    if source.startswith("csi://"):
        cap = cv2.VideoCapture(csi_pipeline(_sensor(source, "csi://")), cv2.CAP_GSTREAMER)
    elif source.startswith("picam://"):
        return PiCamera(_sensor(source, "picam://"))
    elif source.isdigit():
        with _quiet_opencv():
            cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise InputError(f"--source {source}: camera {source} could not be opened (no such camera, or it is busy); "
                             f"expected {EXPECTED}")
    elif "://" in source:
        cap = cv2.VideoCapture(source)
    else:
        if Path(source).is_dir():
            raise InputError(f"--source {source} is a directory; expected {EXPECTED}")
        if not Path(source).is_file():
            raise InputError(f"--source {source}: no such file; expected {EXPECTED}")
        cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        hint = " (OpenCV needs GStreamer support for CSI cameras)" if source.startswith("csi://") else ""
        raise InputError(f"--source {source}: OpenCV could not open it{hint}; expected a readable video, camera "
                         "or stream")
    return cap


class PiCamera:
    """A Raspberry Pi camera through picamera2 with OpenCV's ``read()`` / ``get()`` / ``release()`` surface."""

    def __init__(self, sensor: int = 0, size: tuple[int, int] = (1280, 720)):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise BackendUnavailable("picam:// needs picamera2 (Raspberry Pi OS: sudo apt install "
                                     "python3-picamera2); it is not importable here") from None
        try:
            self.cam = Picamera2(sensor)
            self.cam.configure(self.cam.create_video_configuration(main={"size": size, "format": "BGR888"}))
            self.cam.start()
        except (IndexError, RuntimeError) as e:
            raise InputError(f"--source picam://{sensor}: picamera2 could not open it ({e}); expected a connected "
                             "Raspberry Pi camera") from None
        self.size = size

    def read(self):
        frame = self.cam.capture_array("main")
        return frame is not None, frame

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1]}.get(prop, 0.0)

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def release(self) -> None:
        self.cam.stop()
        self.cam.close()


VIDEO_FILE_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")


def is_live(source: str) -> bool:
    """A camera or a stream (frames arrive on their own clock), not a file: a video file served over HTTP
    (``http://host/clip.mp4``) is read frame by frame like a local one."""
    if source.startswith(("http://", "https://")):
        from urllib.parse import urlparse

        return not urlparse(source).path.lower().endswith(VIDEO_FILE_SUFFIXES)
    return source.isdigit() or "://" in source


class Source:
    """Frames from ``cap`` (anything with OpenCV's ``read()``), numbered in the order the source gave them and
    timestamped; raises :class:`SourceStopped` from :meth:`read` when a live source stops or a file ends early."""

    def __init__(self, cap, *, live: bool = False, name: str = "the source"):
        self.cap, self.live, self.name = cap, live, name
        get = getattr(cap, "get", None)
        fps = float(get(cv2.CAP_PROP_FPS)) if get else 0.0
        self.fps = fps if math.isfinite(fps) and fps > 0 else 30.0
        count = float(get(cv2.CAP_PROP_FRAME_COUNT)) if get and not live else 0.0
        self.expected = int(count) if math.isfinite(count) and count > 0 else None
        self.count = 0
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._reading = self._close_pending = self.closed = False

    def read(self) -> tuple[np.ndarray, int, float] | None:
        """The next (frame, index in the source, seconds), or None at the end of the file. A live source's frames
        that the processing was too slow for leave gaps in the indices of the frames processed."""
        with self._lock:
            if self.closed or self._close_pending:
                return None
            self._reading = True
        try:
            ok, frame = self.cap.read()
        finally:
            with self._lock:
                self._reading = False
                if self._close_pending:
                    self._release()
        if self.closed:
            return None
        if not ok or frame is None:
            self._check_end()
            return None
        t = time.monotonic() - self.start if self.live else self.count / self.fps
        self.count += 1
        return frame, self.count - 1, t

    def close(self) -> None:
        """Release the capture (``cap.release()`` when it has one). When another thread is inside ``read()`` (a
        capture thread stalled on a stream, left behind after its join timed out), the release happens when that
        read returns, never under it: a native capture released mid-read can crash the process."""
        with self._lock:
            if self._reading:
                self._close_pending = True
            elif not self.closed:
                self._release()

    def _release(self) -> None:
        self.closed, self._close_pending = True, False
        release = getattr(self.cap, "release", None)
        if release is not None:
            release()

    def _check_end(self) -> None:
        if self.count == 0:
            return  # the caller says "no frames"
        if self.live:
            raise SourceStopped(f"{self.name} stopped giving frames after {self.count}; expected a camera or stream "
                                "that runs until Ctrl-C (the outputs hold the frames before)")
        if self.expected is not None and self.count + 2 < self.expected:
            raise SourceStopped(f"{self.name} ended after {self.count} of the {self.expected} frames its header "
                                "announces (truncated or corrupt?); the outputs hold the frames before")
