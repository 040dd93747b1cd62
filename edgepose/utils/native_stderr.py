"""Keep native libraries' log lines (absl / TensorFlow C++ logging, import-time prints) off the terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_held() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block: dropped when the block succeeds, written to
    stderr (its last 4000 characters) when it raises, so a failure keeps its native diagnostics. Python-level
    writes to ``sys.stderr`` in the block are held the same way; keep the block to the native call."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters, some notebooks)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not ok:
                held.seek(0)
                text = held.read().decode("utf-8", errors="replace").strip()
                if text:
                    sys.stderr.write(text[-4000:] + "\n")
