"""The SimCC head through the chain: a short training run, then fp32 / INT8 exports to every target with their
gates, and the latency of each bundle next to the heatmap sibling on the same trunk.

    .venv/bin/python benchmarks/simcc.py [--images 512 --epochs 4] [--val synthetic-val:200]

simcc-mnv2s (MobileNetV2 x0.5, 96x128) starts from the default top-down model's trunk (simplebaseline-mnv2s-edge:
same backbone, same input) and trains only briefly on synthetic people, so its AP says the head learns, not what a
full schedule reaches. Each export runs its gate: parity vs PyTorch (fp32) or the labelled accuracy gate (INT8,
fp32 ONNX as the reference, on --val). Latency: median of `--runs` single-crop calls (rt(frame, box)), 1 thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import machine, median_ms, table, today  # noqa: E402

TARGETS = ["onnx", "openvino", "tflite"]


def trained_model(images: int, epochs: int, log):
    import torch

    from edgepose.data.sources import resolve_dataset
    from edgepose.heads import get_head
    from edgepose.models import create
    from edgepose.models.checkpoint import load_backbone_from
    from edgepose.train.loop import TrainConfig, train
    from edgepose.weights import default_checkpoint

    torch.manual_seed(0)
    model = create("simcc-mnv2s")
    load_backbone_from(model, default_checkpoint("simplebaseline-mnv2s-edge"))
    coco = resolve_dataset(f"synthetic:{images}", "single", progress=False)
    data = get_head("simcc").train_dataset(coco, model.edgepose_meta, train=True, seed=0, flip_prob=0.0)
    start = time.perf_counter()
    hist = train(model, data, TrainConfig(epochs=epochs, batch_size=32, lr=2e-3, threads=2, progress=False), log=None)
    log(f"trained {images} images x {epochs} epochs in {time.perf_counter() - start:.0f} s; loss {hist['loss']}")
    return model


def latency(bundle_dir: Path, runs: int) -> float:
    import edgepose
    from edgepose.data.synthetic import render_sample

    frame, anns = render_sample(np.random.default_rng(0), mode="single", image_size=(192, 256))
    x, y, w, h = anns[0]["bbox"]
    box = np.array([[x, y, x + w, y + h]], np.float32)
    with edgepose.load(bundle_dir, threads=1) as rt:
        return median_ms(lambda: rt(frame, boxes=box), runs, warmup=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--val", default="synthetic-val:200")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    import edgepose
    from edgepose.models import create

    model = trained_model(args.images, args.epochs, print)
    sibling = create("simplebaseline-mnv2s-edge", weights="default")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, m in (("simcc-mnv2s", model), ("simplebaseline-mnv2s-edge", sibling)):
            for target in TARGETS:
                for precision in ("fp32", "int8"):
                    if name != "simcc-mnv2s" and precision == "int8":
                        continue
                    out = Path(tmp) / f"{name}-{target}-{precision}"
                    kw = dict(calib="synthetic:64", val=args.val, max_ap_drop=3.0) if precision == "int8" else {}
                    try:
                        b = edgepose.export(m, target=target, precision=precision, out=out, log=None, **kw)
                    except edgepose.errors.AccuracyGateFailed as exc:
                        rows.append([name, target, precision, "FAILED", str(exc)[:120], "", ""])
                        continue
                    if precision == "fp32":
                        par = b.manifest["parity"]
                        gate = f"parity {par['keypoint_px_error']:.4f} px, rel {par['raw_rel_error']:.1e}"
                        ap_text = drop = ""
                    else:
                        acc = b.manifest["accuracy"]
                        gate = "passed" if acc["passed"] else "FAILED"
                        ap_text = f"{acc['ap']:.1f} (fp32 {acc['ap_reference']:.1f})"
                        lo, hi = acc["ap_drop_interval95"]
                        drop = f"{acc['ap_drop']:.2f} [{lo:.2f}, {hi:.2f}]"
                    rows.append([name, target, precision, gate, ap_text, drop, f"{latency(out, args.runs):.2f}"])
                    print(rows[-1], flush=True)
    print(f"\n{today()} · {machine()} · `.venv/bin/python benchmarks/simcc.py --images {args.images} --epochs "
          f"{args.epochs} --val {args.val}`\n")
    print(table(["model", "target", "precision", "gate", "AP (val)", "AP drop [95 % interval]", "latency ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
