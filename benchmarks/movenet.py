"""MoveNet through the chain, measured in one run: accuracy and speed of every bundle of the PyTorch port
beside Google's own INT8 TFLite, on the same interpreter, threads and photos.

    .venv/bin/python benchmarks/movenet.py [--model movenet-lightning] [--targets onnx openvino tflite]
        [--precisions fp32 int8] [--threads 2] [--runs 200] [--out /tmp/movenet-bench]

1. the port (embedded weights converted from Google's TFJS files): OKS AP on the coco-mini photos
   (ground-truth boxes) with its 95 % bootstrap interval, in PyTorch;
2. export to each target × precision; INT8 is calibrated on frames sampled evenly across real videos
   (``CALIB_VIDEOS``) and gated label-free on held-out videos (``VAL_VIDEOS``), the fp32 port's own poses
   being the reference;
3. every bundle and Google's INT8 TFLite (``../shared/models``, imported): AP on the same photos; Google's INT8
   also through the same label-free gate as ours;
4. every bundle, the PyTorch eager port (``--baseline torch``) and Google's model timed stage by stage, one fresh
   process each, on a real photo (a whole-frame box: one crop per call);
5. a Markdown table: AP (interval), inference p50, whole-call p50, speed-up over eager and over Google's model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, today  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
GOOGLE_INT8 = SHARED / "models" / "movenet_singlepose_lightning_int8.tflite"
VIDEOS = SHARED / "data" / "real-video"

from edgepose.demo.real import CALIB_VIDEOS, REAL_MAX_AP_DROP, VAL_VIDEOS  # noqa: E402  (the demo's split)


def coco_mini():
    from edgepose.data.coco import CocoKeypoints

    ann = SHARED / "data" / "coco-mini" / "test_coco.json"
    return CocoKeypoints(ann, ann.parent)


def export_bundles(model, args, out: Path, log) -> dict:
    import edgepose
    from edgepose.errors import AccuracyGateFailed

    bundles = {}
    for target in args.targets:
        for precision in args.precisions:
            kw = {}
            if precision == "int8":
                kw = {"calib": [str(VIDEOS / v) for v in CALIB_VIDEOS], "calib_size": args.calib_size,
                      "val": [str(VIDEOS / v) for v in VAL_VIDEOS], "val_size": 100,
                      "max_ap_drop": REAL_MAX_AP_DROP}
            try:
                b = edgepose.export(model, target=target, precision=precision, out=out / f"{target}-{precision}",
                                    log=None, **kw)
            except AccuracyGateFailed as exc:
                log(f"{target} {precision}: refused by the gate: {str(exc).splitlines()[0]}")
                continue
            bundles[(target, precision)] = b
            acc = b.manifest.get("accuracy") or {}
            log(f"{target} {precision}: written" + (
                f"; {acc.get('gate')} gate: AP {acc.get('ap'):.1f}, drop {acc.get('ap_drop'):.2f} "
                f"{acc.get('ap_drop_interval95')}, p50 / p90 moved {acc.get('keypoint_error_px_p50')} / "
                f"{acc.get('keypoint_error_px_p90')} px" if acc else ""))
    return bundles


def google_label_free(model, google: Path, args, log) -> None:
    """Google's INT8 through the same label-free gate as our INT8 bundles (the fp32 port's poses on the held-out
    frames): how far Google's own quantization departs from its float model."""
    import edgepose
    from edgepose.calibration.label_free import label_free_gate
    from edgepose.runtimes.torch import TorchRuntime

    with tempfile.TemporaryDirectory() as ws, TorchRuntime(model, threads=args.threads) as ref:
        gate = label_free_gate(ref, [str(VIDEOS / v) for v in VAL_VIDEOS], workspace=Path(ws), size=100,
                               max_ap_drop=REAL_MAX_AP_DROP, log=lambda *_: None, progress=False)
        with edgepose.load(google, threads=args.threads) as rt:
            r = gate.check(rt).to_dict()
    log(f"google tflite int8: label-free gate: AP {r['ap']:.1f}, drop {r['ap_drop']:.2f} {r['ap_drop_interval95']}, "
        f"p50 / p90 moved {r.get('keypoint_error_px_p50')} / {r.get('keypoint_error_px_p90')} px")


def bench(bundles: dict, google: Path | None, args, log) -> dict:
    from edgepose.profiling.runner import run_bench

    image = next((SHARED / "data" / "coco-mini").glob("*.jpg"))
    common = {"threads": args.threads, "runs": args.runs, "warmup": 20, "batch": 1, "image": str(image)}
    first = next(iter(bundles.values()))
    jobs = [{"kind": "baseline", "bundle": str(first.path), **common}]
    jobs += [{"kind": "bundle", "bundle": str(b.path), **common} for b in bundles.values()]
    if google is not None:
        jobs.append({"kind": "bundle", "bundle": str(google), **common})
    log(f"bench: {len(jobs)} jobs × {args.runs} runs, {args.threads} threads, one process each")
    return run_bench(jobs, progress=False, command="benchmarks/movenet.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="movenet-lightning")
    p.add_argument("--targets", nargs="+", default=["onnx", "openvino", "tflite"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--calib-size", type=int, default=200)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the measured rows here")
    args = p.parse_args()

    import edgepose
    from edgepose.eval.evaluate import ap_with_interval
    from edgepose.export.importer import import_model
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    log = print
    out = args.out or Path(tempfile.mkdtemp(prefix="movenet-bench-"))
    model = create(args.model, weights="default")
    coco = coco_mini()
    with TorchRuntime(model, threads=args.threads) as rt:
        ap = {("pytorch", "fp32"): ap_with_interval(rt, coco)}
    bundles = export_bundles(model, args, out, log)
    google = None
    if args.model == "movenet-lightning" and GOOGLE_INT8.is_file():
        google = import_model(GOOGLE_INT8, kind="regression", keypoints="coco", out=out / "google-int8").path
    if google is not None:
        google_label_free(model, google, args, log)
    paths = {key: b.path for key, b in bundles.items()}
    if google is not None:
        paths[("google tflite", "int8")] = google
    for key, path in paths.items():
        with edgepose.load(path, threads=args.threads) as rt:
            ap[key] = ap_with_interval(rt, coco)
    doc = bench(bundles, google, args, log)
    rows = report_rows(doc, ap, google)
    headers = ["model", "target", "precision", "AP coco-mini (95 % CI)", "inference p50 ms", "call p50 ms",
               "× eager", "× Google INT8"]
    print(f"\n{args.model}, {args.threads} threads, batch 1, {today()}, {machine()}\n")
    print(table(headers, rows))
    if args.json:
        args.json.write_text(json.dumps({"headers": headers, "rows": rows}, indent=1))


def report_rows(doc: dict, ap: dict, google) -> list[list]:
    res = {}
    for r in doc["results"]:
        key = ("google tflite", "int8") if r["role"] == "foreign" else (r["target"], r["precision"])
        res[key] = r
    eager = res[("pytorch", "fp32")]["stages"]["total"]["p50"]
    theirs = res.get(("google tflite", "int8"), {}).get("stages", {}).get("total", {}).get("p50")
    rows = []
    for key, r in res.items():
        call = r["stages"]["total"]["p50"]
        inf = r["stages"].get("inference", {}).get("p50")
        a, (lo, hi) = ap.get(key, (float("nan"), (float("nan"), float("nan"))))
        rows.append([r["model"], key[0], key[1], f"{a:.1f} ({lo:.1f} to {hi:.1f})", f"{inf:.2f}" if inf else "–",
                     f"{call:.2f}", f"{eager / call:.1f}", f"{theirs / call:.2f}" if theirs else "–"])
    return rows


if __name__ == "__main__":
    main()
