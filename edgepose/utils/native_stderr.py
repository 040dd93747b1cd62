"""Keep native libraries' log lines (absl / TensorFlow C++ logging, import-time prints) off the terminal — and
give them back, with the Python stack, when the native call fails, even by crashing the process.

While a block is held, file descriptor 2 is a pipe read by a small keeper process (``python -I -S``). The block
ending normally tells the keeper to drop what it read; an exception tells it to print the last 4000
characters; a native crash (segfault, abort) kills this process, the pipe closes without a word and the keeper
prints them too. :mod:`faulthandler`, when enabled (the CLI enables it), writes to the real stderr during the
block, so the crash also shows the Python call site. Where no keeper can start, a temporary file holds the
lines instead (replayed on exceptions; lost in a crash).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

TAIL = 4000
DROP, PRINT = b"\0edgepose:drop\0", b"\0edgepose:print\0"

# the keeper: read until told what to do, or until EOF (the writer died: print)
_KEEPER = f"""
import os, sys
buf, died = b"", True
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    buf += chunk
    if buf.endswith({DROP!r}):
        sys.exit(0)
    if buf.endswith({PRINT!r}):
        buf, died = buf[:-{len(PRINT)}], False
        break
text = buf.decode("utf-8", "replace").strip()
if text:
    head = "edgepose: what the native library printed before the process died:\\n" if died else ""
    os.write(2, (head + text[-{TAIL}:] + "\\n").encode())
"""


def _start_keeper(saved: int):
    try:
        read, write = os.pipe()
    except OSError:
        return None, None
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _KEEPER], stdin=read, stdout=subprocess.DEVNULL,
                                stderr=saved, close_fds=True)
    except (OSError, ValueError):
        os.close(read)
        os.close(write)
        return None, None
    os.close(read)
    return proc, write


@contextlib.contextmanager
def _faults_to(fd: int) -> Iterator[None]:
    """Point an enabled faulthandler at ``fd`` for the block (then back at sys.stderr)."""
    if not faulthandler.is_enabled():
        yield
        return
    faulthandler.enable(file=fd, all_threads=True)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            faulthandler.enable(file=sys.stderr, all_threads=True)


@contextlib.contextmanager
def native_stderr_held() -> Iterator[None]:
    """Hold file descriptor 2 for the block: dropped when it succeeds, its last 4000 characters written to stderr
    when it raises or crashes. Python-level writes to ``sys.stderr`` in the block are held the same way; keep
    the block to the native call."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters, some notebooks)
        yield
        return
    proc, write = _start_keeper(saved)
    held = tempfile.TemporaryFile() if proc is None else None
    os.dup2(write if proc is not None else held.fileno(), 2)
    ok = False
    try:
        with _faults_to(saved):
            yield
        ok = True
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if proc is not None:
            with contextlib.suppress(OSError):
                os.write(write, DROP if ok else PRINT)
        os.dup2(saved, 2)
        if proc is not None:
            os.close(write)
            _wait(proc)
        else:
            _replay(held, ok)
        os.close(saved)


def _wait(proc) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # something the library started still holds the pipe
        proc.kill()


def _replay(held, ok: bool) -> None:
    with held:
        if ok:
            return
        held.seek(0)
        text = held.read().decode("utf-8", errors="replace").strip()
        if text:
            sys.stderr.write(text[-TAIL:] + "\n")
