"""TFLite INT8 paths on the default top-down model, in one run: fp32, litert-torch PT2E INT8, edgepose's int8.

    .venv/bin/python benchmarks/tflite_int8_paths.py [--threads 2] [--runs 200] [--rounds 3] [--calib synthetic:64]
                                                    [--pt2e-add-fix]

Rows:
- fp32: the tflite target's fp32 bundle (litert-torch).
- PT2E int8: litert-torch's documented INT8 path (``prepare_pt2e`` / ``convert_pt2e`` with ``PT2EQuantizer``
  and ``get_symmetric_quantization_config(is_per_channel=True)``, ``litert_torch.convert(..., quant_config=
  QuantConfig(pt2e_quantizer=q))``), calibrated on the same samples. ``--pt2e-add-fix`` adds a row where
  the add nodes carry the ``source_fn_stack`` metadata PT2EQuantizer's add annotator needs (torch 2.13's
  export no longer records it), which makes the residual ADDs INT8 too.
- edgepose int8: the tflite target's int8 bundle (ai-edge-quantizer full-integer static recipe, float I/O).

Latency: ``interpreter.invoke()`` on a fixed input, XNNPACK, ``--threads`` threads, batch 1; the rows are timed
round-robin for ``--rounds`` rounds of ``--runs`` runs each and the median of all runs is reported (the other
load on a shared machine spreads over every row alike). INT8 share: compute ops (QUANTIZE / DEQUANTIZE not
counted) whose data input is int8. AP: OKS AP on synthetic-val (the accuracy gate's data) and its drop vs the
fp32 PyTorch model, through the edgepose runtime (host decode).
"""

from __future__ import annotations

import argparse
import operator
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, today  # noqa: E402

import edgepose  # noqa: E402
from edgepose.models import create  # noqa: E402

MODEL = "simplebaseline-mnv2s-edge"


def pt2e_int8(model, calib, path: Path, *, add_fix: bool) -> float:
    """litert-torch PT2E INT8 of ``model`` (NHWC input) → ``path``; returns the conversion seconds."""
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    start = time.perf_counter()
    module = litert_torch.to_channel_last_io(model.eval(), args=[0]).eval()
    batches = [torch.from_numpy(b) for b in calib.batches("NHWC")]
    graph = torch.export.export(module, (batches[0],)).module()
    if add_fix:
        for node in graph.graph.nodes:
            if node.op == "call_function" and node.target == torch.ops.aten.add.Tensor \
                    and all(isinstance(a, torch.fx.Node) for a in node.args[:2]):
                node.meta["source_fn_stack"] = [(node.name, operator.add)]
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for b in batches:
            prepared(b)
    converted = convert_pt2e(prepared, fold_quantize=False)
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    litert_torch.convert(converted, (batches[0],), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
    return time.perf_counter() - start


def _interpreter(path: Path, threads: int):
    from edgepose.runtimes.tflite import interpreter_class

    it = interpreter_class()(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    x = np.random.default_rng(0).standard_normal(detail["shape"]).astype(np.float32)
    scale, zero = detail["quantization"]
    if detail["dtype"] != np.float32:
        x = np.clip(np.round(x / scale) + zero, -128, 127).astype(detail["dtype"])
    it.set_tensor(detail["index"], x)
    return it


def _io_dtypes(path: Path) -> str:
    from edgepose.runtimes.tflite import interpreter_class

    it = interpreter_class()(model_path=str(path))
    return f"{np.dtype(it.get_input_details()[0]['dtype']).name} / {np.dtype(it.get_output_details()[0]['dtype']).name}"


def latencies(paths: dict[str, Path], threads: int, runs: int, rounds: int) -> dict[str, float]:
    """Median invoke() ms per model, timed round-robin."""
    its = {k: _interpreter(p, threads) for k, p in paths.items()}
    times: dict[str, list[float]] = {k: [] for k in paths}
    for it in its.values():
        for _ in range(20):
            it.invoke()
    for _ in range(rounds):
        for key, it in its.items():
            for _ in range(runs):
                t = time.perf_counter()
                it.invoke()
                times[key].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def accuracy(model, path: Path, spec, workspace: Path, gate_cache: dict) -> str:
    """'AP (drop)' of the .tflite at ``path`` through the edgepose TFLite runtime, on the gate's data."""
    from edgepose.calibration.gate import AccuracyGate, resolve_val
    from edgepose.runtimes.spec import ModelSpec
    from edgepose.runtimes.tflite import TFLiteRuntime
    from edgepose.runtimes.torch import TorchRuntime

    if "gate" not in gate_cache:
        coco, name = resolve_val(None, None, spec.kind, workspace)
        ref_spec = ModelSpec.from_dict(spec.to_dict())
        ref_spec.input.layout = "NCHW"
        reference = TorchRuntime(model.eval(), ref_spec).load()
        gate_cache["gate"] = AccuracyGate(reference, coco, val_name=name, log=lambda *_: None)
    with TFLiteRuntime(path, spec, threads=2) as rt:
        report = gate_cache["gate"].check(rt, label=path.name)
    d = report.to_dict()
    return f"{d['ap']:.1f} ({d['ap_drop']:+.2f})"


def main() -> None:
    from edgepose.calibration import CalibrationSet
    from edgepose.runtimes.tflite import model_ops, quantized_share

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calib", default="synthetic:64")
    ap.add_argument("--pt2e-add-fix", action="store_true", help="also time PT2E with INT8 residual ADDs")
    ap.add_argument("--model", default=MODEL,
                    help="registered model; without default weights it runs with random weights and no AP column "
                         "(e.g. simplebaseline-mnv2: the original transposed-conv head)")
    args = ap.parse_args()
    from edgepose.weights import DEFAULTS

    trained = args.model in DEFAULTS
    model = (create(args.model, weights="default") if trained else create(args.model)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = edgepose.export(model, target="tflite", out=tmp / "fp32", parity=False, log=None)
        calib = CalibrationSet.from_source(args.calib, fp32.spec(), progress=False)
        t = time.perf_counter()
        int8 = edgepose.export(model, target="tflite", precision="int8", calib=calib, out=tmp / "int8",
                               allow_accuracy_drop=True, log=None)
        seconds = {"edgepose int8 (ai-edge-quantizer)": time.perf_counter() - t}
        paths = {"fp32 (litert-torch)": fp32.model_path, "PT2E int8 (litert-torch default)": tmp / "pt2e.tflite",
                 "edgepose int8 (ai-edge-quantizer)": int8.model_path}
        seconds["PT2E int8 (litert-torch default)"] = pt2e_int8(model, calib, paths["PT2E int8 (litert-torch default)"],
                                                               add_fix=False)
        if args.pt2e_add_fix:
            key = "PT2E int8 + add annotation fix"
            paths[key] = tmp / "pt2e-add.tflite"
            seconds[key] = pt2e_int8(model, calib, paths[key], add_fix=True)
        ms = latencies(paths, args.threads, args.runs, args.rounds)
        spec = fp32.spec()
        gate_cache: dict = {}
        base = ms["PT2E int8 (litert-torch default)"]
        rows = []
        for key, path in paths.items():
            ops = model_ops(path)
            io = _io_dtypes(path)
            rows.append([key, f"{ms[key]:.3f}", f"{base / ms[key]:.2f}x", f"{path.stat().st_size / 1e6:.2f}",
                         f"{100 * quantized_share(ops):.0f}%", sum(op in ("QUANTIZE", "DEQUANTIZE") for op, _ in ops),
                         accuracy(model, path, spec, tmp, gate_cache) if trained else "– (random weights)",
                         f"{seconds[key]:.1f}" if key in seconds else "", io])
    size = "x".join(map(str, spec.input.size))
    weights = "default weights" if trained else "random weights"
    print(f"machine: {machine()}\ndate: {today()}\nmodel: {args.model} ({size}, {weights}), threads "
          f"{args.threads}, batch 1, median of {args.rounds}x{args.runs} runs (round-robin), calibration "
          f"{args.calib}\n")
    print(table(["path", "median ms", "vs PT2E", "size MB", "INT8 ops", "Q/DQ ops", "AP (drop vs fp32)",
                 "build s", "input / output"], rows))


if __name__ == "__main__":
    main()
