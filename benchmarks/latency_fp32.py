"""fp32 latency per target for the default models, next to PyTorch eager (batch 1, median).

    .venv/bin/python benchmarks/latency_fp32.py [--models NAME_OR_CKPT ...] [--targets onnx openvino tflite]
        [--threads 2] [--runs 100] [--warmup 10]

Every runtime times ``infer`` on the same preprocessed tensor (model only, no pre/post-processing).
OpenVINO runs at f32 inference precision (its CPU default on AMX machines would be bf16).
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
from edgepose.models.checkpoint import load_model  # noqa: E402
from edgepose.runtimes import is_available  # noqa: E402
from edgepose.runtimes.torch import TorchRuntime  # noqa: E402

MODELS = ("simplebaseline-mnv2s-edge", "centernet-mnv2s")
TARGETS = ("onnx", "openvino", "tflite")


def _tensor(spec) -> np.ndarray:
    w, h = spec.input.size
    rng = np.random.default_rng(0)
    shape = (1, 3, h, w) if spec.input.layout == "NCHW" else (1, h, w, 3)
    return rng.standard_normal(shape).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--models", nargs="+", default=list(MODELS), help="model names (embedded weights) or checkpoints")
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models:
            model = load_model(spec)
            name = f"{model.edgepose_meta.name} {'x'.join(map(str, model.edgepose_meta.input_size))}"
            with TorchRuntime(model, threads=args.threads) as rt:
                x = _tensor(rt.spec)
                base = median_ms(lambda x=x: rt.infer(x), args.runs, args.warmup)
            rows.append([name, "pytorch eager", f"{base:.2f}", "1.00x"])
            for target in args.targets:
                b = edgepose.export(model, target=target, out=Path(tmp) / f"{len(rows)}-{target}", log=None)
                if not is_available(b.backend):
                    rows.append([name, target, "n/a (backend missing)", ""])
                    continue
                with edgepose.load(b.path, threads=args.threads) as rt:
                    x = _tensor(rt.spec)
                    ms = median_ms(lambda x=x: rt.infer(x), args.runs, args.warmup)
                rows.append([name, f"{target} ({b.backend})", f"{ms:.2f}", f"{base / ms:.2f}x"])
    print(f"machine: {machine()}\ndate: {today()}\nthreads: {args.threads}, batch 1, runs {args.runs}, "
          f"warmup {args.warmup}, median\n")
    print(table(["model", "runtime", "median ms", "speed-up vs eager"], rows))


if __name__ == "__main__":
    main()
