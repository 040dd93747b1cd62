"""HRNet-W32 at 256x192 (the official COCO configuration) through the chain, timed in one run: PyTorch eager fp32
beside fp32 and INT8 bundles on each CPU target, one fresh process per job, same photo, threads and runs.

    .venv/bin/python benchmarks/hrnet.py [--model hrnet-w32] [--targets onnx openvino] [--precisions fp32 int8]
        [--threads 2] [--runs 50] [--out /tmp/hrnet-bench]

There are no COCO-trained HRNet weights here (nothing is downloaded), so the model gets realistic random weights
(``edgepose.testing.make_realistic``: BatchNorm statistics measured on coco-mini person crops). Speed does not
depend on the weights' values; the INT8 bundles are calibrated on frames spread over the real videos and go through
the label-free gate on held-out videos (the fp32 model's own poses as reference; recorded, not enforced: the
poses of an untrained model say nothing about accuracy). Prints a Markdown table: inference p50, whole-call p50 and
the speed-up over eager.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, today  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEOS = SHARED / "data" / "real-video"


def realistic_model(name: str):
    import numpy as np

    from edgepose.data.coco import CocoKeypoints
    from edgepose.models import create
    from edgepose.pipeline.preprocess import topdown_batch
    from edgepose.runtimes.spec import ModelSpec
    from edgepose.testing import make_realistic

    model = create(name)
    spec = ModelSpec.from_meta(model.edgepose_meta)
    coco = CocoKeypoints(SHARED / "data" / "coco-mini" / "test_coco.json")
    crops = []
    for image_id in coco.image_ids:
        anns = [a for a in coco.annotations_for(image_id) if not a.get("iscrowd", 0)]
        boxes = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        if len(boxes):
            crops.append(topdown_batch(coco.load_image(image_id), boxes, spec.input)[0])
    return make_realistic(model, np.concatenate(crops))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="hrnet-w32")
    p.add_argument("--targets", nargs="+", default=["onnx", "openvino"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--calib-size", type=int, default=64)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--reuse", action="store_true", help="time the bundles already in --out (same checkpoint)")
    args = p.parse_args()

    import edgepose
    from edgepose.bundle import read_bundle
    from edgepose.demo.real import CALIB_VIDEOS, VAL_VIDEOS
    from edgepose.models.checkpoint import load_checkpoint, save_checkpoint
    from edgepose.profiling.runner import run_bench

    out = args.out or Path(tempfile.mkdtemp(prefix="hrnet-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / f"{args.model}.pt"
    if args.reuse and ckpt.is_file():
        model = load_checkpoint(ckpt)
    else:
        model = realistic_model(args.model)
        save_checkpoint(model, ckpt)
    bundles, gates = [], {}
    for target in args.targets:
        for precision in args.precisions:
            kw = {}
            if precision == "int8":
                kw = {"calib": [str(VIDEOS / v) for v in CALIB_VIDEOS], "calib_size": args.calib_size,
                      "val": [str(VIDEOS / v) for v in VAL_VIDEOS], "val_size": 50, "allow_accuracy_drop": True}
            if (out / f"{target}-{precision}" / "manifest.json").is_file() and args.reuse:
                b = read_bundle(out / f"{target}-{precision}")
            else:
                b = edgepose.export(model, target=target, precision=precision, out=out / f"{target}-{precision}",
                                    log=None, **kw)
            bundles.append(b)
            gates[b.path.name] = (b.manifest.get("accuracy") or {}).get("ap_drop")
            print(f"exported {target} {precision}: {b.path}", flush=True)
    image = next((SHARED / "data" / "coco-mini").glob("*.jpg"))
    common = {"threads": args.threads, "runs": args.runs, "warmup": 5, "batch": 1, "image": str(image)}
    jobs = [{"kind": "baseline", "bundle": str(bundles[0].path), "weights": str(ckpt), **common}]
    jobs += [{"kind": "bundle", "bundle": str(b.path), **common} for b in bundles]
    doc = run_bench(jobs, progress=False, command="benchmarks/hrnet.py")
    rows, eager = [], None
    for r in doc["results"]:
        infer, total = r["stages"]["inference"]["p50"], r["stages"]["total"]["p50"]
        eager = infer if r["role"] == "baseline" else eager
        rows.append([r["target"], r["precision"], f"{infer:.2f}", f"{total:.2f}",
                     f"{eager / infer:.1f}x" if eager else "-"])
    print(f"\n{args.model} {model.edgepose_meta.input_size}, {args.threads} threads, {args.runs} runs; "
          f"{machine()}; {today()}")
    print(table(["target", "precision", "inference p50 ms", "whole call p50 ms", "vs eager"], rows))
    print("label-free gate AP drop of the INT8 bundles (untrained weights: recorded only):", gates)


if __name__ == "__main__":
    main()
