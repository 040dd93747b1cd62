"""ONNX target: the exported graph itself, run by ONNX Runtime (or OpenVINO / TensorRT reading ONNX).

INT8 is static QDQ quantization with ``onnxruntime.quantization``: QDQ format (QOperator measured 5-8x
slower here), per-channel int8 weights, MinMax or Percentile activation ranges from the calibration set.
Entropy calibration is not offered: on heatmap models it clipped the heatmap logits to uselessness.
The in-graph decoder (``/decoder/...`` nodes: argmax, coordinate arithmetic) always stays float.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import shutil
from pathlib import Path

from edgepose.errors import ConfigError, ExportError
from edgepose.export.int8_scope import describe, float_names, inside_names
from edgepose.export.targets.base import ExportContext, Target
from edgepose.runtimes.onnxruntime import DISABLED_OPTIMIZERS
from edgepose.utils.lazy import require

METHODS = ("minmax", "percentile")
DECODER_PREFIX = "/decoder/"
PERCENTILE = 99.999
CHUNK = 16  # calibration samples per collect pass (bounds the memory of stored activations)


def _ort_quant():
    require("onnxruntime", "INT8 quantization with onnxruntime")
    import onnxruntime.quantization as q

    return q


def prepared_model(src: str | Path, workspace: Path) -> Path:
    """``quant_pre_process`` (shape inference + basic graph optimisation) of ``src``, cached in ``workspace``."""
    out = Path(workspace) / f"{Path(src).stem}.preq.onnx"
    if not out.is_file():
        q = _ort_quant()
        try:
            q.quant_pre_process(str(src), str(out), skip_symbolic_shape=False)
        except Exception as exc:  # ORT raises plain Exceptions from its optimiser
            raise ExportError(f"onnxruntime quant_pre_process failed on {src}: {str(exc).splitlines()[0][:200]}") \
                from None
    return out


def quantizable_nodes(path: str | Path) -> list[str]:
    """Conv / ConvTranspose / Gemm / MatMul node names of ``path`` in graph order, decoder excluded."""
    from edgepose.calibration.layers import onnx_quantizable_nodes

    return [n for n in onnx_quantizable_nodes(path) if not n.startswith(DECODER_PREFIX)]


def decoder_nodes(path: str | Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.name.startswith(DECODER_PREFIX)]


def outside_nodes(path: str | Path, int8_modules: tuple[str, ...]) -> list[str]:
    """Names of the network's nodes (decoder excluded) outside ``int8_modules``: they stay float."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    names = [n.name for n in graph.node if n.name and not n.name.startswith(DECODER_PREFIX)]
    return float_names(names, int8_modules, "ONNX graph")


def _network_only(path: Path, workspace: Path) -> Path:
    """``path`` cut before its in-graph decoder (the raw head outputs become the outputs), for calibration: the
    decoder stays float, and its masked scores (-inf) broke the percentile histogram and made ORT divide 0 by 0
    for zero points it then ignored."""
    import onnx
    import onnx.utils

    model = onnx.load(str(path))
    graph = model.graph
    decoder = [n for n in graph.node if n.name.startswith(DECODER_PREFIX)]
    if not decoder:
        return path
    made = {o for n in graph.node if not n.name.startswith(DECODER_PREFIX) for o in n.output}
    # the network's results: what the decoder reads, and graph outputs that bypass it (e.g. PAFs beside in-graph peaks)
    heads = sorted({i for n in decoder for i in n.input if i in made}
                   | {o.name for o in graph.output if o.name in made})
    out = Path(workspace) / f"{path.stem}.network.onnx"
    net = onnx.utils.Extractor(model).extract_model([i.name for i in graph.input], heads)
    onnx.save(net, str(out))
    return out


class _Reader:
    """CalibrationDataReader over a slice of ``calib`` (float32 NCHW batches of one)."""

    def __init__(self, calib, input_name: str, start: int, stop: int):
        self.it = iter(list(calib.batches("NCHW"))[start:stop])
        self.input_name = input_name

    def get_next(self):
        batch = next(self.it, None)
        return None if batch is None else {self.input_name: batch}


def calibration_ranges(model: Path, calib, method: str, input_name: str, workspace: Path, log=None) -> Path:
    """Activation ranges of ``model`` over ``calib`` (ORT calibrator, chunked), cached as ORT's JSON."""
    if method not in METHODS:
        raise ConfigError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r} "
                          "(entropy is not offered: it clipped heatmap logits in our measurements)")
    cache = Path(workspace) / f"ranges-{model.stem}-{method}-{calib.digest[:16]}.json"
    if cache.is_file():
        return cache
    q = _ort_quant()
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    ops = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    extra = {"percentile": PERCENTILE} if method == "percentile" else {}
    calibrator = q.create_calibrator(
        _network_only(model, workspace), ops, augmented_model_path=str(Path(workspace) / f"augmented-{method}.onnx"),
        calibrate_method=getattr(q.CalibrationMethod, "MinMax" if method == "minmax" else "Percentile"),
        providers=["CPUExecutionProvider"], extra_options=extra)
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrator prints its progress
        for start in range(0, len(calib), CHUNK):
            calibrator.collect_data(_Reader(calib, input_name, start, start + CHUNK))
        q.save_tensors_data(calibrator.compute_data(), cache)
    if log:
        log(f"calibration: {method} ranges from {len(calib)} samples")
    return cache


def quantize_qdq(src: str | Path, dst: str | Path, calib, *, input_name: str, workspace: Path,
                 method: str = "minmax", exclude=(), symmetric: bool = False, int8_modules=(), log=None) -> dict:
    """Static QDQ INT8 of ``src`` → ``dst``; per-channel int8 weights; ``exclude`` node names stay float, and
    every node outside ``int8_modules`` (PyTorch module names; () = the whole network).

    ``symmetric``: int8 activations with zero point 0 (TensorRT's explicit quantization); otherwise uint8
    activations (ONNX Runtime's fastest CPU kernels). Same inputs → byte-identical ``dst``.
    """
    if calib is None or len(calib) == 0:
        raise ConfigError("INT8 quantization needs calibration data (calib=SOURCE / --calib SOURCE)")
    q = _ort_quant()
    model = prepared_model(src, workspace)
    ranges = calibration_ranges(model, calib, method, input_name, workspace, log)
    known = set(quantizable_nodes(model))
    unknown = sorted(set(exclude) - known)
    if unknown:
        raise ConfigError(f"layers to keep in float not in the model: {unknown[:3]}; expected names from "
                          "quantizable_layers()")
    outside, decoder = outside_nodes(model, tuple(int8_modules)), decoder_nodes(model)
    act = q.QuantType.QInt8 if symmetric else q.QuantType.QUInt8
    extra = {"WeightSymmetric": True}
    if symmetric:  # TensorRT: int8 zero points only, float bias (it fuses the bias itself)
        extra.update(ActivationSymmetric=True, QuantizeBias=False)
    try:
        q.quantize_static(str(model), str(dst), None, quant_format=q.QuantFormat.QDQ, per_channel=True,
                          activation_type=act, weight_type=q.QuantType.QInt8,
                          nodes_to_exclude=sorted(set(exclude) | set(outside)) + decoder,
                          calibrate_method=getattr(q.CalibrationMethod,
                                                   "MinMax" if method == "minmax" else "Percentile"),
                          extra_options=extra, calibration_cache_path=str(ranges))
    except Exception as exc:
        raise ExportError(f"onnxruntime quantize_static failed: {str(exc).splitlines()[0][:200]}") from None
    return {"method": method, "tool": f"onnxruntime.quantization {importlib.metadata.version('onnxruntime')}",
            "format": "QDQ", "per_channel": True, "weights": "int8 symmetric",
            "activations": "int8 symmetric" if symmetric else "uint8 asymmetric",
            "bias": "float" if symmetric else "int32",
            "calibration": calib.describe(), "kept_float": sorted(set(exclude)),
            "int8_modules": describe(tuple(int8_modules)), "float_outside_int8_modules": len(outside),
            "float_decoder": bool(decoder)}


class OnnxTarget(Target):
    name = "onnx"

    def build(self, ctx: ExportContext) -> dict:
        if ctx.precision != "int8":
            shutil.copyfile(ctx.onnx.path, ctx.dir / "model.onnx")
            return {"model_file": "model.onnx"}
        info = quantize_qdq(ctx.onnx.path, ctx.dir / "model.onnx", ctx.calib, input_name=ctx.onnx.input_name,
                            workspace=ctx.workspace, method=ctx.method, exclude=ctx.exclude,
                            int8_modules=ctx.int8_modules, log=ctx.log)
        # float layers between Q/DQ pairs stay float only with these off (edgepose.runtimes.onnxruntime)
        info["onnxruntime_disabled_optimizers"] = list(DISABLED_OPTIMIZERS)
        return {"model_file": "model.onnx", "quantization": info}

    def quantizable_layers(self, ctx: ExportContext) -> list[str]:
        """Conv / ConvTranspose / Gemm / MatMul node names of the model ONNX Runtime quantizes (those inside
        ``ctx.int8_modules``)."""
        return inside_names(quantizable_nodes(prepared_model(ctx.onnx.path, ctx.workspace)), ctx.int8_modules)


TARGET = OnnxTarget()
