"""TFLite / LiteRT target: the PyTorch model (not the ONNX) converted by litert-torch, NHWC input.

The converted module is ``wrap_for_export(model, decode)`` (the model, plus the in-graph decoder when
decode='graph') behind ``litert_torch.to_channel_last_io(..., args=[0])``: the input is (1, H, W, 3) float32,
the outputs stay as the model returns them (NCHW heatmaps (1, K, H', W'), the six CenterNet maps, or the
decoded keypoints / scores / boxes). Batch is fixed to 1; the runtime splits larger batches.

decode='auto' resolves to 'host' here: gathers in the graph can push a TFLite GPU delegate back to the CPU.
An explicit decode='graph' is honoured.

Precisions: one converter per precision in ``CONVERTERS`` (fp32 now; INT8 PT2E adds an entry).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from edgepose.errors import ExportError
from edgepose.export.targets.base import ExportContext, Target

MODEL_FILE = "model.tflite"


@contextlib.contextmanager
def _quiet_litert() -> Iterator[None]:
    """Hide litert-torch's progress lines for the conversion, unless the user set LITERT_TORCH_SHOW_PROGRESS."""
    key = "LITERT_TORCH_SHOW_PROGRESS"
    if key in os.environ:
        yield
        return
    os.environ[key] = "n"
    try:
        yield
    finally:
        os.environ.pop(key, None)


def sample_input(spec):
    """A fixed (1, H, W, 3) float32 tensor (seeded) to trace the NHWC module with."""
    import torch

    w, h = spec.input.size
    return torch.randn(1, h, w, 3, generator=torch.Generator().manual_seed(0))


def nhwc_module(ctx: ExportContext):
    """The module to convert: model (+ in-graph decoder) with channel-last input, outputs unchanged."""
    from edgepose.export.onnx import wrap_for_export
    from edgepose.utils.lazy import require

    litert_torch = require("litert_torch", "the tflite target")
    return litert_torch.to_channel_last_io(wrap_for_export(ctx.model, ctx.spec.decode), args=[0]).eval()


def convert_fp32(ctx: ExportContext, module, sample, path: Path) -> dict:
    """litert-torch float conversion → ``path``; returns the manifest's 'quantization' details (None: float)."""
    from edgepose.utils.lazy import require

    litert_torch = require("litert_torch", "the tflite target")
    try:
        with _quiet_litert():
            edge = litert_torch.convert(module, (sample,))
            edge.export(str(path))
    except Exception as exc:  # litert-torch raises torch.export / MLIR / converter errors of many types
        text = str(exc).strip().splitlines()
        raise ExportError(f"litert-torch could not convert {ctx.model.edgepose_meta.name} to TFLite: "
                          f"{(text[0] if text else type(exc).__name__)[:300]}") from exc
    return {}


CONVERTERS: dict[str, Callable[..., dict]] = {"fp32": convert_fp32}


def output_names(ctx: ExportContext, count: int) -> list[str]:
    """Logical output names (heatmaps / hm, reg, ... / keypoints, scores, boxes), as in the ONNX export."""
    from edgepose.export.onnx import DECODE_OUTPUTS

    names = DECODE_OUTPUTS.get((ctx.spec.kind, ctx.spec.decode))
    if ctx.onnx is not None and getattr(ctx.onnx, "output_names", None):
        names = list(ctx.onnx.output_names)
    return list(names) if names and len(names) == count else [f"output_{i}" for i in range(count)]


def describe_io(ctx: ExportContext, path: Path, reference: list) -> dict:
    """Read the written model back: input / output tensor names, shapes, dtypes, in the module's output order.

    Checks that the interpreter's outputs, ordered by litert-torch's ``output_<i>`` names, have the shapes of
    the PyTorch outputs ``reference`` (raises ExportError otherwise). Value parity is the gate's job.
    """
    from edgepose.runtimes.tflite import interpreter_class, model_order

    it = interpreter_class()(model_path=str(path))
    details = it.get_output_details()
    ordered = [details[j] for j in model_order([d["name"] for d in details])]
    got = [tuple(int(v) for v in d["shape"]) for d in ordered]
    want = [tuple(r.shape) for r in reference]
    if got != want:
        raise ExportError(f"the converted TFLite model's outputs have shapes {got} (tensors "
                          f"{[d['name'] for d in ordered]}), expected the PyTorch module's {want}")
    names = output_names(ctx, len(ordered))
    inp = it.get_input_details()[0]
    return {
        "inputs": [{"name": "input", "tensor": inp["name"], "shape": [int(v) for v in inp["shape"]],
                    "dtype": inp["dtype"].__name__, "layout": "NHWC"}],
        "outputs": [{"name": n, "tensor": d["name"], "shape": [int(v) for v in d["shape"]],
                     "dtype": d["dtype"].__name__} for n, d in zip(names, ordered)],
    }


class TFLiteTarget(Target):
    name = "tflite"
    backend = "tflite"
    package = "ai-edge-litert"
    precisions = tuple(CONVERTERS)
    layout = "NHWC"

    def resolve_decode(self, decode: str, kind: str, codec: dict) -> str:
        """'auto' → 'host' (in-graph gathers can push a GPU delegate back to the CPU); explicit values kept."""
        if decode == "auto":
            return "host"
        return super().resolve_decode(decode, kind, codec)

    def build(self, ctx: ExportContext) -> dict:
        import torch

        self.check_precision(ctx.precision)
        module, sample = nhwc_module(ctx), sample_input(ctx.spec)
        with torch.no_grad():
            out = module(sample)
        reference = list(out) if isinstance(out, (tuple, list)) else [out]
        path = ctx.dir / MODEL_FILE
        start = time.perf_counter()
        quantization = CONVERTERS[ctx.precision](ctx, module, sample, path)
        seconds = time.perf_counter() - start
        extra = {"model_file": MODEL_FILE, "io": describe_io(ctx, path, reference),
                 "conversion": {"tool": "litert-torch", "tool_version": _version("litert-torch"),
                                "seconds": round(seconds, 2)}}
        if quantization:
            extra["quantization"] = quantization
        return extra


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


TARGET = TFLiteTarget()
