"""``edgepose demo``: the main job on the embedded default models.

1. load the two default models and report their accuracy (synthetic held-out set; coco-mini real photos
   with ground-truth boxes for the top-down model when ../shared/data is present);
2. export each to every target that can be built here (fp32, parity-gated);
3. load every bundle back, check its accuracy matches PyTorch and time it; print one summary table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgepose.cli import command

DEFAULT_MODELS = ("simplebaseline-mnv2s-edge", "centernet-mnv2s")


def _demo_args(p) -> None:
    p.add_argument("--out", default="demo-report", help="folder for bundles and the summary JSON")
    p.add_argument("--targets", default="onnx,openvino,tflite,tensorrt", help="comma-separated targets")
    p.add_argument("--threads", type=int, default=2, help="inference threads for timing")
    p.add_argument("--val-images", type=int, default=100, help="synthetic validation images per model")
    p.add_argument("--runs", type=int, default=30, help="timed runs per bundle (after 5 warm-up runs)")
    p.add_argument("--shared-data", default=None, help="path to shared/data (default: ../shared/data)")


def _latency_ms(rt, tensor: np.ndarray, runs: int) -> float:
    from edgepose.utils.timing import median_ms

    return median_ms(lambda: rt.infer(tensor), runs, warmup=5)


def _coco_mini(shared: Path | None):
    from edgepose.data.coco import CocoKeypoints

    root = shared or Path.cwd().parent / "shared" / "data"
    ann = root / "coco-mini" / "test_coco.json"
    return CocoKeypoints(ann, ann.parent) if ann.is_file() else None


def _row(name, target, rt, coco, val_n, runs) -> dict:
    from edgepose.eval.evaluate import evaluate
    from edgepose.pipeline.preprocess import bottomup_batch, topdown_batch

    stats = evaluate(rt, coco, max_images=val_n, progress=False)
    img = np.full((256, 256, 3), 127, np.uint8)
    spec = rt.spec
    tensor = (bottomup_batch(img, spec.input)[0] if spec.kind == "centernet"
              else topdown_batch(img, np.array([[0, 0, 255, 255]], np.float32), spec.input)[0])
    return {"model": name, "target": target, "AP": round(stats["AP"], 4), "latency_ms": round(_latency_ms(rt, tensor, runs), 2)}


@command("demo", "the main job: default models → accuracy, export every target here, parity, latency")(_demo_args)
def run_demo(args) -> int:
    import edgepose
    from edgepose.data.sources import resolve_dataset
    from edgepose.eval.evaluate import evaluate
    from edgepose.models import create
    from edgepose.runtimes import is_available
    from edgepose.runtimes.torch import TorchRuntime

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, notes = [], []
    for name in DEFAULT_MODELS:
        model = create(name, weights="default")
        kind = model.edgepose_meta.kind
        val = resolve_dataset(f"synthetic-val:{args.val_images}", kind, split="val")
        with TorchRuntime(model, threads=args.threads) as rt:
            rows.append(_row(name, "pytorch", rt, val, args.val_images, args.runs))
            real = _coco_mini(Path(args.shared_data) if args.shared_data else None)
            if real is not None and kind == "heatmap":
                ap = evaluate(rt, real, progress=False)["AP"]
                notes.append(f"{name}: OKS AP {ap:.3f} on coco-mini real photos (GT boxes; trained on synthetic only)")
        for target in args.targets.split(","):
            bundle = edgepose.export(model, target=target, out=out / "bundles" / f"{name}-{target}", log=None)
            backend = bundle.backend
            if not is_available(backend):
                notes.append(f"{name} → {target}: bundle written; backend {backend} not available here, not run")
                continue
            with edgepose.load(bundle.path, threads=args.threads) as rt:
                rows.append(_row(name, target, rt, val, args.val_images, args.runs))
    _print_table(rows, notes)
    (out / "summary.json").write_text(json.dumps({"rows": rows, "notes": notes}, indent=2))
    return 0


def _print_table(rows: list[dict], notes: list[str]) -> None:
    base = {r["model"]: r["latency_ms"] for r in rows if r["target"] == "pytorch"}
    print(f"\n{'model':28s} {'target':10s} {'AP':>6s} {'latency ms':>11s} {'speed-up':>9s}")
    for r in rows:
        speed = base[r["model"]] / r["latency_ms"] if r["latency_ms"] else float("nan")
        print(f"{r['model']:28s} {r['target']:10s} {r['AP']:6.3f} {r['latency_ms']:11.2f} {speed:8.1f}x")
    for n in notes:
        print(f"- {n}")
