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


def random_input(rt, seed: int = 0):
    """A seeded standard-normal float32 batch of one, shaped as ``rt``'s spec wants it (NCHW or NHWC)."""
    import numpy as np

    w, h = rt.spec.input.size
    shape = (1, h, w, 3) if rt.spec.input.layout == "NHWC" else (1, 3, h, w)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def interleaved_infer_ms(runtimes: dict, rounds: int, runs: int, warmup: int = 10) -> dict:
    """{key: median over rounds of the round's median ``rt.infer`` ms}; every round times each loaded runtime once,
    in turn, so a shared host's load changes hit them all alike."""
    import statistics

    from edgepose.utils.timing import times_ms

    inputs = {k: random_input(rt) for k, rt in runtimes.items()}
    per = {k: [] for k in runtimes}
    for _ in range(rounds):
        for k, rt in runtimes.items():
            per[k].append(statistics.median(times_ms(lambda rt=rt, x=inputs[k]: rt.infer(x), runs, warmup)))
    return {k: statistics.median(v) for k, v in per.items()}
