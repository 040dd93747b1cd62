"""Where to decode: the in-graph decoder against host decode, per target and precision, whole frames.

    .venv/bin/python benchmarks/decode_placement.py [--models simplebaseline-mnv2s-edge] [--calib synthetic]
        [--targets onnx openvino tflite] [--precisions fp32 int8] [--threads 2] [--runs 200] [--rounds 7]

For each model × target × precision the model (embedded default weights) is exported twice (``--decode graph``
and ``--decode host``; INT8 calibrated on synthetic:128 and accuracy-gated, or with ``--calib real`` on the demo's
real videos, gated label-free on its held-out ones at the demo's limit) and both bundles are timed in
interleaved rounds: ``rt.infer`` on a tensor (the model, plus the decoder when it is in the graph) and the
whole per-frame call ``rt(frame, box)`` (crop, normalise, inference, decode, map back; bottom-up models: the
whole frame) on a generated 640x480 frame. Ratio = median of the per-round ratios graph / host (below 1: the
graph decode is faster per frame). The gate lines (AP drop, keypoint displacement) of both INT8 bundles are
printed too. This is what ``resolve_decode`` of each target is decided on.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, random_input, table, today  # noqa: E402

from edgepose.utils.timing import times_ms  # noqa: E402

MODEL = "simplebaseline-mnv2s-edge"


def _calib_options(calib: str) -> dict:
    if calib == "synthetic":
        return {"calib": "synthetic:128"}
    from edgepose.demo.real import REAL_MAX_AP_DROP, VAL_FRAMES, real_sources

    sources = real_sources(Path(__file__).resolve().parents[2] / "shared")
    if sources is None:
        raise SystemExit("--calib real: ../shared/data (real-video, coco-mini) not found")
    calib, val, _ = sources
    return {"calib": calib, "calib_size": 128, "val": val, "val_size": VAL_FRAMES, "max_ap_drop": REAL_MAX_AP_DROP}


def _export(model, target: str, precision: str, decode: str, out: Path, calib: str):
    import edgepose

    kw = _calib_options(calib) if precision == "int8" else {}
    return edgepose.export(model, target=target, precision=precision, decode=decode, out=out, log=None, **kw)


def _time(bundles: dict, args) -> dict:
    """{(what, decode): [median ms per round]} for what in infer / frame."""
    import edgepose

    rts = {d: edgepose.load(b.path, threads=args.threads) for d, b in bundles.items()}
    frame = np.random.default_rng(1).integers(0, 255, (480, 640, 3), np.uint8)
    box = np.array([[200, 100, 400, 420, 1.0]], np.float32)
    tensors = {d: random_input(rt) for d, rt in rts.items()}
    per = {(k, d): [] for k in ("infer", "frame") for d in rts}
    try:
        for _ in range(args.rounds):
            for d, rt in rts.items():
                x = tensors[d]
                per["infer", d].append(statistics.median(times_ms(lambda rt=rt, x=x: rt.infer(x), args.runs, 10)))
                boxes = None if rt.spec.bottom_up else box
                per["frame", d].append(statistics.median(times_ms(lambda rt=rt, b=boxes: rt(frame, boxes=b),
                                                                  args.runs, 10)))
    finally:
        for rt in rts.values():
            rt.close()
    return per


def _gate(bundle) -> str:
    acc = bundle.manifest.get("accuracy") or {}
    if not acc:
        return "–"
    return f"drop {acc['ap_drop']:.2f}, {acc['mean_keypoint_error_px']:.2f} px"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=[MODEL], help="registered models (embedded default weights)")
    ap.add_argument("--calib", choices=["synthetic", "real"], default="synthetic",
                    help="INT8 calibration: synthetic:128, or the demo's real videos with its label-free gate")
    ap.add_argument("--targets", nargs="+", default=["onnx", "openvino", "tflite"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200, help="timed calls per bundle, path and round")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    from edgepose.models import create

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {name: create(name, weights="default").eval() for name in args.models}
        for name, target, precision in itertools.product(args.models, args.targets, args.precisions):
            model = models[name]
            bundles = {d: _export(model, target, precision, d, Path(tmp) / f"{name}-{target}-{precision}-{d}",
                                  args.calib) for d in ("graph", "host")}
            per = _time(bundles, args)
            med = {k: statistics.median(v) for k, v in per.items()}
            ratio = [g / h for g, h in zip(per["frame", "graph"], per["frame", "host"])]
            rows.append([name, target, precision, f"{med['infer', 'graph']:.3f}", f"{med['infer', 'host']:.3f}",
                         f"{med['frame', 'graph']:.3f}", f"{med['frame', 'host']:.3f}",
                         f"{statistics.median(ratio):.3f} ({min(ratio):.3f}–{max(ratio):.3f})",
                         _gate(bundles["graph"]), _gate(bundles["host"])])
    print(f"# Decode placement — {today()} — {machine()}\n")
    print(f"`.venv/bin/python benchmarks/decode_placement.py --models {' '.join(args.models)} --calib {args.calib} "
          f"--targets {' '.join(args.targets)} --precisions {' '.join(args.precisions)} --threads {args.threads} "
          f"--runs {args.runs} --rounds {args.rounds}` — batch 1, median ms\n")
    print(table(["model", "target", "precision", "infer graph", "infer host", "frame graph", "frame host",
                 "frame graph / host", "gate graph", "gate host"], rows))


if __name__ == "__main__":
    main()
