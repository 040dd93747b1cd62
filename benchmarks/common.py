"""Shared helpers for the benchmark scripts: machine fingerprint, timing, Markdown tables."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Callable


def machine() -> str:
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
            f"python {platform.python_version()}")


def today() -> str:
    return dt.date.today().isoformat()


def median_ms(fn: Callable[[], object], runs: int, warmup: int) -> float:
    from edgepose.utils.timing import median_ms as _median_ms

    return _median_ms(fn, runs, warmup)


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
