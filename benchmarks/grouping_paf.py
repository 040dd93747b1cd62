"""PAF grouping cost on the host: 1, 6 and 20 people at 256x256 input (stride 8: 32x32 maps, 17 joints, 19 limbs).

    .venv/bin/python benchmarks/grouping_paf.py [--runs 300] [--noise 0.02]

The maps are the codec's own targets of a generated scene (people on a grid, scaled to fit), plus Gaussian noise
of ``--noise`` so that peaks and PAF samples are not exactly clean. Two rows per scene: the host placement's full
decode (``PAFCodec.decode``: peak NMS, sub-cell offsets, limb scoring, assembly) and the graph placement's host half
(``decode_peaks``: the grouping from the graph's peaks / offsets). Median of ``--runs`` calls, one process, after
warm-up; numpy's own threads as configured (the decode is small-array work: one core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import machine, median_ms, table, today  # noqa: E402

# a standing COCO-17 figure, 116 px tall, centred on its hips' midpoint
FIGURE = np.array([[0, -50], [-4, -54], [4, -54], [-9, -52], [9, -52], [-16, -36], [16, -36], [-22, -14],
                   [22, -14], [-24, 6], [24, 6], [-10, 4], [10, 4], [-11, 34], [11, 34], [-12, 62], [12, 62]], float)


def scene(n: int, size: int = 256, seed: int = 0) -> np.ndarray:
    """``n`` people on a near-square grid filling a ``size`` frame → (n, 17, 3) keypoints."""
    rng = np.random.default_rng(seed)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    scale = min(1.5, 0.85 * size / rows / 116, 0.85 * size / cols / 48)
    kps = np.zeros((n, 17, 3))
    for i in range(n):
        r, c = divmod(i, cols)
        centre = ((c + 0.5) * size / cols + rng.uniform(-2, 2), (r + 0.5) * size / rows + rng.uniform(-2, 2))
        kps[i, :, :2] = FIGURE * scale * rng.uniform(0.9, 1.0) + centre
        kps[i, :, 2] = 2
    return kps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--noise", type=float, default=0.02)
    args = p.parse_args(argv)

    from edgepose.codecs import get_codec
    from edgepose.codecs.paf import dense_offsets, peak_values

    codec = get_codec("paf", input_size=(256, 256), stride=8)
    rows = []
    for n in (1, 6, 20):
        kps = scene(n)
        t = codec.encode(kps, np.concatenate([kps[..., :2].min(1), kps[..., :2].max(1)], 1))
        rng = np.random.default_rng(n)
        hm = (t["heatmaps"] + rng.normal(0, args.noise, t["heatmaps"].shape)).astype(np.float32)[None]
        pafs = (t["pafs"] + rng.normal(0, args.noise, t["pafs"].shape)).astype(np.float32)[None]
        graph = (peak_values(hm, codec.peak_threshold), dense_offsets(hm, codec.sigma), pafs)
        found = codec.decode((hm, pafs))[1]
        host_ms = median_ms(lambda raw=(hm, pafs): codec.decode(raw), args.runs, 20)
        graph_ms = median_ms(lambda g=graph: codec.decode_peaks(g), args.runs, 20)
        rows.append([n, int((found[0] > 0.3).sum()), f"{host_ms:.2f}", f"{graph_ms:.2f}"])
    print(f"{today()}, {machine()}; 256x256 input, 32x32 maps, noise {args.noise}, median of {args.runs} runs\n")
    print(table(["people", "found", "host decode ms (NMS + offsets + grouping)", "graph placement: grouping ms"],
                rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
