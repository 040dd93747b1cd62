"""TensorRT target: the bundle carries ``model.onnx`` + ``build.json``; the engine is built on the device.

Engines are specific to a TensorRT version and a GPU, so export does not ship one: the first load on the
device (or ``edgepose build BUNDLE``) builds it and caches it (see ``edgepose/runtimes/tensorrt``).
Where TensorRT and a GPU are present at export time, the parity gate loads the bundle, which builds and
caches the engine inside it.

INT8 is explicit quantization: the ONNX carries QuantizeLinear/DequantizeLinear pairs with symmetric
int8 scales (zero point 0), made by ``onnxruntime.quantization`` from the calibration set (or given as
``options['qdq_onnx']``), and the builder runs with INT8 + FP16 flags and no calibrator, so layers left
without Q/DQ (``ctx.exclude``, the in-graph decoder) run in FP16. :func:`validate_qdq` checks the ONNX
before it goes into a bundle.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, ExportError
from edgepose.export.targets.base import ExportContext, Target
from edgepose.heads import get_head
from edgepose.runtimes.tensorrt.settings import BUILD_FILE, BuildSettings, make_profile

NOTE = ("TensorRT engine is built on first load on the device (or ahead of time with `edgepose build BUNDLE`)")
BUILD_OPTIONS = ("workspace_mib", "builder_optimization_level", "dla_core", "timing_cache")


def onnx_input_shape(path: str | Path, input_name: str) -> tuple:
    """Shape of graph input ``input_name``: ints for fixed dims, None for symbolic/unknown ones."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in inits}
    if input_name not in inputs:
        raise ExportError(f"{path} has inputs {sorted(inputs)}, expected {input_name!r}")
    dims = inputs[input_name].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def build_settings(onnx_path: str | Path, input_name: str, precision: str,
                   options: dict | None = None) -> BuildSettings:
    """Build settings for ``precision`` from the ONNX input (static or dynamic batch) and export options.

    Options: workspace_mib (1024), builder_optimization_level (3), dla_core (None), timing_cache (True),
    opt_batch (4) and max_batch (16) for a dynamic-batch ONNX.
    """
    options = dict(options or {})
    shape = onnx_input_shape(onnx_path, input_name)
    profile = make_profile(input_name, shape, opt_batch=int(options.get("opt_batch", 4)),
                           max_batch=int(options.get("max_batch", 16)))
    kwargs = {k: options[k] for k in BUILD_OPTIONS if options.get(k) is not None}
    return BuildSettings(precision=precision, profile=profile, **kwargs)


# ---- Q/DQ (explicit INT8) ---------------------------------------------------------------------------
@dataclass
class QdqReport:
    """Counts of Q/DQ nodes in an ONNX and what TensorRT would reject (empty ``problems`` = fine)."""

    quantize: int = 0
    dequantize: int = 0
    pairs: int = 0  # QuantizeLinear → DequantizeLinear on activations
    weight_dequantize: int = 0  # DequantizeLinear of a constant (pre-quantized weights)
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.pairs > 0 and not self.problems


def _constants(graph) -> dict:
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return consts


def _qdq_problems(node, consts: dict) -> list[str]:
    """TensorRT's rules for one Q/DQ node: constant positive scales; int8 zero point equal to 0."""
    label = f"{node.op_type} {node.name or node.output[0]!r}"
    scale = consts.get(node.input[1]) if len(node.input) > 1 else None
    out = []
    if scale is None:
        out.append(f"{label}: scale is not a constant")
    elif not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        out.append(f"{label}: scale must be finite and > 0, got min {float(np.min(scale)):.3g}")
    zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if zp is None:
        if node.op_type == "QuantizeLinear":
            out.append(f"{label}: no zero point, so its output is uint8; TensorRT needs int8 (zero point 0)")
        elif node.input[0] in consts and consts[node.input[0]].dtype != np.int8:
            out.append(f"{label}: dequantizes {consts[node.input[0]].dtype}; TensorRT needs int8")
    elif zp.dtype != np.int8:
        out.append(f"{label}: zero point is {zp.dtype}; TensorRT needs int8 (symmetric, zero point 0)")
    elif np.any(zp != 0):
        out.append(f"{label}: zero point {int(zp.reshape(-1)[np.argmax(zp.reshape(-1) != 0)])} != 0; "
                   "TensorRT needs symmetric quantization")
    return out


def inspect_qdq(model) -> QdqReport:
    """Count Q/DQ nodes of ``model`` (a path or an onnx.ModelProto) and list what TensorRT would reject."""
    import onnx

    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    graph = proto.graph
    consts = _constants(graph)
    producer = {o: n for n in graph.node for o in n.output}
    report = QdqReport()
    for n in graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if n.op_type == "QuantizeLinear":
            report.quantize += 1
        else:
            report.dequantize += 1
            src = producer.get(n.input[0])
            report.pairs += int(src is not None and src.op_type == "QuantizeLinear")
            report.weight_dequantize += int(n.input[0] in consts)
        report.problems.extend(_qdq_problems(n, consts))
    return report


def validate_qdq(model) -> QdqReport:
    """:func:`inspect_qdq`, raising ExportError when the model has no Q/DQ pairs or breaks TensorRT's rules."""
    report = inspect_qdq(model)
    if report.pairs == 0:
        raise ExportError(f"INT8 TensorRT needs a Q/DQ ONNX (explicit quantization); found {report.quantize} "
                          f"QuantizeLinear and {report.dequantize} DequantizeLinear but no Q→DQ pair")
    if report.problems:
        more = f" (+{len(report.problems) - 3} more)" if len(report.problems) > 3 else ""
        raise ExportError(f"Q/DQ ONNX is not TensorRT-compatible: {'; '.join(report.problems[:3])}{more}")
    return report


# ---- the target ---------------------------------------------------------------------------------
class TensorRTTarget(Target):
    name = "tensorrt"
    layout = "NCHW"

    def resolve_decode(self, decode: str, kind: str, codec: dict, precision: str = "fp32") -> str:
        """'auto' at fp16 / int8 → host for the DARK / UDP heatmap refinement. The engine build pins the decoder's
        layers to FP32 (``runtimes.tensorrt.engine.pin_decoder_fp32``), but that has not yet run on a GPU here;
        left in FP16 the first in-graph decoder collapsed to the integer argmax (measured on OpenVINO bf16),
        the current window decoder held there but moved keypoints twice as far as the host decode. Explicit
        ``decode='graph'`` is kept."""
        if decode == "auto" and precision != "fp32" and get_head(kind).refines_in_graph(codec):
            return "host"
        return super().resolve_decode(decode, kind, codec, precision)

    def build(self, ctx: ExportContext) -> dict:
        """Copy the ONNX (for INT8: a symmetric Q/DQ ONNX from ctx.calib, or ``options['qdq_onnx']``) and
        write build.json."""
        src = Path(ctx.options.get("qdq_onnx") or ctx.onnx.path)
        quant = None
        if ctx.precision == "int8":
            if not ctx.options.get("qdq_onnx"):
                src, quant = self._quantize(ctx)
            report = validate_qdq(src)
            if ctx.log:
                ctx.log(f"tensorrt: Q/DQ ONNX ok — {report.pairs} activation pairs, "
                        f"{report.weight_dequantize} quantized weights")
        try:
            settings = build_settings(src, ctx.onnx.input_name, ctx.precision, ctx.options)
        except ConfigError as exc:
            raise ExportError(f"tensorrt: {exc}") from None
        shutil.copyfile(src, ctx.dir / "model.onnx")
        (ctx.dir / BUILD_FILE).write_text(json.dumps(settings.to_dict(), indent=2, sort_keys=True))
        extra = {"model_file": "model.onnx", "onnx_file": "model.onnx", "build_file": BUILD_FILE,
                 "build": settings.to_dict(), "note": NOTE}
        return dict(extra, quantization=quant) if quant else extra

    def _quantize(self, ctx: ExportContext) -> tuple[Path, dict]:
        """Symmetric int8 Q/DQ ONNX (activations and weights, zero point 0) in the workspace."""
        from edgepose.export.targets.onnx import quantize_qdq

        dst = ctx.workspace / "model.qdq.onnx"
        info = quantize_qdq(ctx.onnx.path, dst, ctx.calib, input_name=ctx.onnx.input_name, workspace=ctx.workspace,
                            method=ctx.method, exclude=ctx.exclude, symmetric=True,
                            int8_modules=ctx.int8_modules, log=ctx.log)
        return dst, dict(info, builder="TensorRT explicit quantization (INT8 + FP16 fallback)")

    def quantizable_layers(self, ctx: ExportContext) -> list[str]:
        """Conv / ConvTranspose / Gemm / MatMul node names of the Q/DQ ONNX (as for the ONNX target)."""
        from edgepose.export.int8_scope import inside_names
        from edgepose.export.targets.onnx import prepared_model, quantizable_nodes

        return inside_names(quantizable_nodes(prepared_model(ctx.onnx.path, ctx.workspace)), ctx.int8_modules)


TARGET = TensorRTTarget()
