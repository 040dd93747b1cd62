"""SIGTERM and Ctrl-C without half-written files.

Raising an exception from a signal handler (what Python does for Ctrl-C) can land inside a Python callback run by
native code; a nanobind extension (onnx's, here) then aborts the process. So SIGTERM (docker stop, systemd, a CI
timeout) never raises: the CLI's handler runs the clean-ups registered with :func:`on_terminate` (temporary
folders of an export, a bundle being written, a synthetic set being generated) and exits with 143. A loop that
should stop gracefully (``edgepose run`` on a camera) asks :func:`stop_requests` instead: the first SIGINT or
SIGTERM only sets a flag the loop reads between frames; a second Ctrl-C raises as usual.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

TERMINATED_EXIT = 128 + signal.SIGTERM
_CLEANUPS: list[Callable[[], None]] = []


@contextlib.contextmanager
def on_terminate(cleanup: Callable[[], None]) -> Iterator[None]:
    """Run ``cleanup`` if SIGTERM ends the process inside this block (exceptions are handled by the block itself)."""
    _CLEANUPS.append(cleanup)
    try:
        yield
    finally:
        _CLEANUPS.remove(cleanup)


def remove_on_terminate(path: str | Path):
    """:func:`on_terminate` that deletes a temporary file or folder."""
    p = Path(path)
    return on_terminate(lambda: shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT / SIGTERM back for a few renames that must happen together (a bundle replacing the previous
    one); a signal that came meanwhile is sent again when the block ends, to the handlers in place before it.

    Handlers rather than ``pthread_sigmask``: a mask covers one thread, and a signal sent to the process goes to
    any thread not blocking it (ONNX Runtime's, OpenVINO's), after which Python runs the handler in the main
    thread anyway."""
    pending: list[int] = []

    def hold(signum, frame) -> None:
        pending.append(signum)

    try:
        with _handlers({signal.SIGINT: hold, signal.SIGTERM: hold}):
            yield
    finally:
        for signum in dict.fromkeys(pending):
            os.kill(os.getpid(), signum)


def _terminate(signum, frame) -> None:
    for cleanup in reversed(list(_CLEANUPS)):
        with contextlib.suppress(Exception):
            cleanup()
    with contextlib.suppress(Exception):
        sys.stderr.write("terminated\n")
        sys.stderr.flush()
    os._exit(TERMINATED_EXIT)


@contextlib.contextmanager
def _handlers(handlers: dict[int, Callable]) -> Iterator[None]:
    """Install signal handlers for the block (main thread only; elsewhere nothing changes)."""
    previous = {}
    try:
        for signum, fn in handlers.items():
            previous[signum] = signal.signal(signum, fn)
    except ValueError:  # not the main thread
        _restore(previous)
        yield
        return
    try:
        yield
    finally:
        _restore(previous)


def _restore(previous: dict) -> None:
    for signum, fn in previous.items():
        signal.signal(signum, signal.SIG_DFL if fn is None else fn)  # None: a handler set from C


@contextlib.contextmanager
def sigterm_cleans_up() -> Iterator[None]:
    """For the CLI: SIGTERM runs the registered clean-ups and exits 143 instead of dying with litter."""
    with _handlers({signal.SIGTERM: _terminate}):
        yield


class StopRequests:
    """Set by the first SIGINT / SIGTERM inside :func:`stop_requests`: ``signal`` is its name, or None."""

    signal: str | None = None


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequests]:
    """For loops over a camera or stream: the first SIGINT or SIGTERM sets ``.signal`` (the loop ends after the
    current frame and keeps its outputs); a second SIGINT raises KeyboardInterrupt, a second SIGTERM terminates."""
    stop = StopRequests()

    def request(signum, frame):
        if stop.signal is None:
            stop.signal = signal.Signals(signum).name
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            _terminate(signum, frame)

    with _handlers({signal.SIGINT: request, signal.SIGTERM: request}):
        yield stop
