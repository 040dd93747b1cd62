"""What recording golden samples adds to an export: ``edgepose.export`` of the default top-down model with and
without the golden step, alternating, median wall time of each. Also what holding a native library's stderr costs
(``native_stderr_held``: the keeper process that replays it after a crash), median of 20 blocks.

    .venv/bin/python benchmarks/golden_cost.py [--target onnx] [--runs 5]

The first export of a process pays the converter's imports, so one untimed warm-up export runs first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import machine, today  # noqa: E402


def main() -> None:
    import edgepose
    import edgepose.export.api as api
    from edgepose.models import create

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    model = create("simplebaseline-mnv2s-edge", weights="default")
    record = api.golden_samples
    times = {"with": [], "without": []}
    with tempfile.TemporaryDirectory() as tmp:
        edgepose.export(model, target=args.target, out=Path(tmp) / "warm", log=None)
        for i in range(args.runs):
            for mode in times:
                api.golden_samples = record if mode == "with" else (lambda *a: {"skipped": "benchmark"})
                start = time.perf_counter()
                edgepose.export(model, target=args.target, out=Path(tmp) / f"{mode}{i}", log=None)
                times[mode].append(time.perf_counter() - start)
    api.golden_samples = record
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{today()} · {machine()} · {args.target}, {args.runs} runs each: with golden samples "
          f"{med['with']:.2f} s, without {med['without']:.2f} s, difference {med['with'] - med['without']:+.2f} s")
    print(f"held native stderr (keeper process): {keeper_ms():.1f} ms per block (median of 20)")


def keeper_ms(runs: int = 20) -> float:
    import os

    from edgepose.utils.native_stderr import native_stderr_held

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with native_stderr_held():
            os.write(2, b"a native log line\n")
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


if __name__ == "__main__":
    main()
