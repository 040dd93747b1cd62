"""Every target x precision for the default models: OKS AP, AP drop vs PyTorch fp32, latency, model size.

    .venv/bin/python benchmarks/quantization.py [--threads 2] [--runs 200] [--val 100] [--models ...]

One run, one machine: PyTorch eager fp32 is timed in the same process; latency is the median of
``--runs`` calls of ``Runtime.infer`` on one preprocessed tensor (batch 1, model only). INT8 bundles are
calibrated on 128 synthetic images; AP is on the first ``--val`` synthetic-val images (GT boxes for the
top-down model); AP drop is in AP points (1.0 = 0.01 AP) against PyTorch fp32.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_ms, table, today  # noqa: E402

import edgepose  # noqa: E402
from edgepose.data.sources import resolve_dataset  # noqa: E402
from edgepose.errors import AccuracyGateFailed  # noqa: E402
from edgepose.eval.evaluate import evaluate  # noqa: E402
from edgepose.export.targets import TARGETS  # noqa: E402
from edgepose.heads import get_head  # noqa: E402
from edgepose.models import create  # noqa: E402
from edgepose.runtimes.torch import TorchRuntime  # noqa: E402

MODELS = ("simplebaseline-mnv2s-edge", "centernet-mnv2s")


def _tensor(spec) -> np.ndarray:
    w, h = spec.input.size
    shape = (1, 3, h, w) if spec.input.layout == "NCHW" else (1, h, w, 3)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _size_mb(bundle) -> float:
    return sum(f["bytes"] for f in bundle.manifest["files"].values()) / 2**20


def _one(model, target, precision, out, val_spec, val, args):
    kw = {} if precision == "fp32" else {"calib": "synthetic:128", "val": val_spec}
    try:
        b = edgepose.export(model, target=target, precision=precision, out=out, log=None, **kw)
    except AccuracyGateFailed as exc:
        return None, str(exc).split(":")[1][:60]
    with edgepose.load(b.path, threads=args.threads) as rt:
        x = _tensor(rt.spec)
        ms = median_ms(lambda x=x: rt.infer(x), args.runs, args.warmup)
        acc = b.manifest.get("accuracy") or {}
        ap = acc["ap"] if "ap" in acc else 100 * evaluate(rt, val, progress=False)["AP"]
    return (ap, ms, _size_mb(b)), ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model = create(name, weights="default")
            val_spec = f"synthetic-val:{args.val}"
            val = resolve_dataset(val_spec, get_head(model.edgepose_meta.kind).sample_mode, split="val",
                                      progress=False)
            with TorchRuntime(model, threads=args.threads) as rt:
                x = _tensor(rt.spec)
                base = median_ms(lambda x=x: rt.infer(x), args.runs, args.warmup)
                ref_ap = 100 * evaluate(rt, val, progress=False)["AP"]
            rows.append([name, "pytorch eager", "fp32", f"{ref_ap:.1f}", "0.0", f"{base:.2f}", "1.0x", ""])
            for target in ("onnx", "openvino", "tflite"):
                for precision in TARGETS[target].precisions:
                    res, note = _one(model, target, precision, Path(tmp) / f"{name}-{target}-{precision}",
                                     val_spec, val, args)
                    if res is None:
                        rows.append([name, target, precision, "", "", "", "", f"gate failed:{note}"])
                        continue
                    a, ms, mb = res
                    rows.append([name, target, precision, f"{a:.1f}", f"{ref_ap - a:.1f}", f"{ms:.2f}",
                                 f"{base / ms:.1f}x", f"{mb:.2f} MB"])
                    print(" | ".join(rows[-1]), flush=True)
    print(f"\nmachine: {machine()}\ndate: {today()}\nthreads {args.threads}, batch 1, median of {args.runs} runs "
          f"after {args.warmup} warm-up; AP on synthetic-val:{args.val} (AP points)\n")
    print(table(["model", "runtime", "precision", "AP", "AP drop", "median ms", "vs eager", "size"], rows))


if __name__ == "__main__":
    main()
