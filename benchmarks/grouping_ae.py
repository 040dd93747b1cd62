"""Associative-embedding decode cost at 256x256 input for 1, 6 and 20 people (median of many runs, one thread).

    .venv/bin/python benchmarks/grouping_ae.py [--runs 200]

Scenes: people of random size and place, ideal heatmaps from the codec's own encode plus Gaussian noise (0.03), tag
maps painting each person's value (spaced 2 apart, noise 0.1). Columns: the host's candidate extraction (what the
graph does with decode='graph'), the grouping + refinement (always on the host), and both (decode='host'); each
as median wall ms / median CPU ms.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from edgepose.codecs import get_codec  # noqa: E402

TEMPLATE = np.array([(0, .08), (.03, .06), (-.03, .06), (.06, .07), (-.06, .07), (.12, .2), (-.12, .2),
                     (.16, .35), (-.16, .35), (.18, .5), (-.18, .5), (.08, .52), (-.08, .52), (.09, .73),
                     (-.09, .73), (.1, .95), (-.1, .95)], np.float32)


def scene(codec, people: int, rng: np.random.Generator):
    kps = []
    for _ in range(people):
        h = rng.uniform(50, 160) if people < 10 else rng.uniform(40, 80)
        xy = TEMPLATE * h + (rng.uniform(20, 236), rng.uniform(0, 256 - h))
        kps.append(np.concatenate([xy, np.full((17, 1), 2.0, np.float32)], 1))
    kps = np.stack(kps)
    t = codec.encode(kps, None)
    wq, hq = codec.feature_size
    tags = np.zeros((17, hq, wq), np.float32)
    for p in range(people):
        for j in range(17):
            if t["joint_mask"][p, j]:
                cy, cx = divmod(int(t["joints"][p, j]), wq)
                tags[j, max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2] = 2.0 * p
    noise = lambda a, s: (a + rng.normal(0, s, a.shape)).astype(np.float32)  # noqa: E731
    return noise(t["heatmaps"][None], 0.03), noise(tags[None], 0.1), noise(t["heatmaps_hr"][None], 0.03)


def median_ms(fn, runs: int) -> str:
    """Median wall ms / median CPU ms of this process (the CPU time holds on a machine shared with other jobs)."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return f"{1000 * float(np.median(wall)):.2f} / {1000 * float(np.median(cpu)):.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    args = p.parse_args()
    codec = get_codec("ae", input_size=(256, 256))
    rng = np.random.default_rng(0)
    print(f"AE decode, 256x256 input (maps 64x64 + 128x128, K=17, M={codec.max_people}), median of {args.runs} runs")
    print("| people | candidates (ms wall / cpu) | grouping + refinement | host decode total | found |")
    print("|---|---|---|---|---|")
    for people in (1, 6, 20):
        outs = scene(codec, people, rng)
        cand = codec.candidates(outs)
        _, scores, _ = codec.decode(outs)
        found = int((scores[0] > 0.2).sum())
        c = median_ms(lambda: codec.candidates(outs), args.runs)  # noqa: B023
        g = median_ms(lambda: codec.group(*cand), args.runs)  # noqa: B023
        t = median_ms(lambda: codec.decode(outs), args.runs)  # noqa: B023
        print(f"| {people} | {c} | {g} | {t} | {found} |")


if __name__ == "__main__":
    main()
