"""A dependency-free progress bar for training, calibration and benchmarks.

On a terminal it redraws one line; elsewhere (CI logs, pipes) it prints a line at most every ``log_every``
fraction and ``log_seconds`` seconds, and one when done, so logs stay short (a job of a few seconds: one
line). Disabled entirely with ``enabled=False`` or ``EDGEPOSE_NO_PROGRESS=1``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")
_OPEN_LINE = False  # a bar was drawn with "\r" and nothing ended its line yet


def end_open_line(stream: TextIO | None = None) -> None:
    """End a half-drawn bar's line, so that an error or "interrupted" does not land on its end."""
    global _OPEN_LINE
    if _OPEN_LINE:
        (stream or sys.stderr).write("\n")
        _OPEN_LINE = False


class Progress:
    def __init__(self, total: int | None, desc: str = "", *, enabled: bool = True,
                 stream: TextIO | None = None, log_every: float = 0.1, log_seconds: float = 10.0):
        self.total, self.desc, self.n = total, desc, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled and os.environ.get("EDGEPOSE_NO_PROGRESS", "") in ("", "0")
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_seconds = log_seconds
        self._log_step = max(1, round((total or 0) * log_every))  # items between log lines
        self._next_log = self._log_step
        self.start = self._last_log = time.perf_counter()
        self._drawn = -1  # the count the last line showed
        self.postfix = ""

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled:
            return
        if self.tty:
            self._draw(end="\r")
        elif self.total and (self.n == self.total or (self.n >= self._next_log and
                                                      time.perf_counter() - self._last_log >= self.log_seconds)):
            self._next_log, self._last_log = self.n + self._log_step, time.perf_counter()
            self._draw(end="\n")

    def _draw(self, end: str) -> None:
        elapsed = time.perf_counter() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if self.total:
            width = 24
            filled = int(width * min(1.0, self.n / self.total))
            eta = (self.total - self.n) / rate if rate > 0 else 0.0
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total}"
            timing = f"{elapsed:.0f}s<{eta:.0f}s"
        else:
            bar, timing = f"{self.n}", f"{elapsed:.0f}s"
        line = f"{self.desc}: {bar} {timing} {rate:.1f} it/s {self.postfix}".rstrip()
        self.stream.write(line + end)
        self.stream.flush()
        self._drawn = self.n
        global _OPEN_LINE
        _OPEN_LINE = end == "\r"

    def close(self) -> None:
        """End the bar: on a terminal, its final state on its own line; in a log, a last line unless the last
        one already shows the final count (a job that stopped short of its total, or had none)."""
        if self.enabled and (self.tty or self._drawn != self.n):
            self._draw(end="\n")


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", *,
             enabled: bool = True) -> Iterator[T]:
    """Wrap an iterable with a :class:`Progress` bar."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    bar = Progress(total, desc, enabled=enabled)
    try:
        for item in iterable:
            yield item
            bar.update()
    finally:
        bar.close()
