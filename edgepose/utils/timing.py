"""A timing context for export steps: logs what ran and how long it took (and what failed)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def step(what: str, log: Callable[[str], None] | None = print) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        if log:
            log(f"{what}: failed after {time.perf_counter() - start:.1f} s")
        raise
    if log:
        log(f"{what}: {time.perf_counter() - start:.1f} s")


def times_ms(fn: Callable[[], object], runs: int = 30, warmup: int = 3) -> list[float]:
    """Wall time of each of ``runs`` calls of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def median_ms(fn: Callable[[], object], runs: int = 30, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``runs`` calls, after ``warmup`` untimed calls."""
    import statistics

    return float(statistics.median(times_ms(fn, runs, warmup)))
