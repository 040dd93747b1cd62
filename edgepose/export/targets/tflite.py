"""TFLite / LiteRT target: the PyTorch model (not the ONNX) converted by litert-torch, NHWC input.

The converted module is ``wrap_for_export(model, decode)`` (the model, plus the in-graph decoder when
decode='graph') behind ``litert_torch.to_channel_last_io(..., args=[0])``: the input is (1, H, W, 3) float32,
the outputs stay as the model returns them (NCHW heatmaps (1, K, H', W'), the six CenterNet maps, or the
decoded keypoints / scores / boxes). Batch is fixed to 1; the runtime splits larger batches.

decode='auto' resolves to 'graph' at fp32 / INT8 for the codecs in ``GRAPH_DECODE_CODECS``, else to 'host'
(``TFLiteTarget.resolve_decode``). An explicit decode is honoured.

Precisions (one converter per precision in ``CONVERTERS``):

- ``fp32``: litert-torch float conversion.
- ``fp16``: the fp32 model with float16 weights (ai-edge-quantizer ``FLOAT_CASTING``, weight-only): half the
  file; TFLite GPU delegates compute in fp16 from it. The CPU (XNNPACK) dequantizes the weights once at load
  and computes in fp32, so on a CPU an fp16 bundle is only smaller, not faster — for a CPU, use int8.
- ``int8``: full-integer static quantization of the fp32 model with ai-edge-quantizer (recipe
  ``static_wi8_ai8``: int8 per-channel symmetric weights, int8 activations from MinMax ranges over the
  calibration set, run in the TFLite interpreter itself). MinMax means the smallest min and largest max of
  each tensor over all samples, not ai-edge-quantizer's default exponential moving average of per-sample
  extremes (smoothing 0.95), which lets the last ~20 samples set the range and clips rarer, larger values.
  That clipping cost centernet-mnv2s 9.5 AP (19.3 → 9.8 on synthetic-val:100, measured 2026-11-25): its
  person-centre logits ``hm`` got a range up to 0.57 while centre peaks reach 1.6, so the strongest peaks
  saturated to one value, tied in score and in the 3x3 max-pool peak test; with true MinMax the same all-INT8
  graph keeps AP 19.1 at the same speed. Every CONV_2D / DEPTHWISE_CONV_2D, every residual
  ADD and the upsampling path (RESIZE_NEAREST_NEIGHBOR) run INT8. Float32 input / output by default (one
  QUANTIZE after the input, one DEQUANTIZE before each output); option ``int8_io=True`` gives the model int8
  I/O (the runtime quantizes with the stored scale and zero point). ``ctx.exclude`` (names from
  ``quantizable_layers``: the PyTorch module names of the convolutions, e.g. 'final_layer') keeps those ops
  float between DEQUANTIZE / QUANTIZE: sensitivity-driven mixed precision works on TFLite too. The in-graph
  decoder (decode='graph') stays float. Transposed convolutions (TRANSPOSE_CONV, e.g. SimpleBaseline's
  original ``deconv`` head) run INT8 too: litert-torch writes the bias a ConvTranspose2d + BatchNorm folds into
  as a 4-D (1, 1, 1, C) tensor, which the reference kernels accept but XNNPACK does not delegate (2.4x slower
  fp32) and ai-edge-quantizer 0.10 quantizes per channel along its first axis (C scales for a size-1 axis: the
  interpreter refuses the file), so every conversion reshapes such biases to the (C,) TFLite documents
  (``with_1d_tconv_bias``). A TRANSPOSE_CONV whose bias cannot be rewritten (shared with another op) is kept float
  and listed in the manifest's ``kept_float_auto``.

Why ai-edge-quantizer and not litert-torch's PT2E path (measured 2026-11-25, simplebaseline-mnv2s-edge
96x128, 2 threads, ``benchmarks/tflite_int8_paths.py``): PT2E (``PT2EQuantizer`` with
``get_symmetric_quantization_config(is_per_channel=True)``) makes every convolution of the edge head INT8 but
leaves 9 of the 10 residual ADDs in float between DEQUANTIZE / QUANTIZE: its add annotator matches
``source_fn_stack`` metadata, which torch 2.13's ``torch.export`` no longer records. ai-edge-quantizer gives
100% INT8 compute ops. On XNNPACK both run in the same time (about 0.36 ms, 3x faster than fp32): the float
ADDs are cheap on this model. The deciding reasons are the others: the quantization step takes about 1 s on
top of the cached fp32 conversion instead of a 50 s PT2E conversion per build (the sensitivity loop builds
dozens), it excludes single ops (mixed precision; PT2E here cannot), float or int8 I/O is a recipe choice,
and calibration runs in the interpreter that deploys the model. Neither needs TensorFlow. Models with
transposed convolutions are all-INT8 too (see ``int8`` above).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import re
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ConfigError, ExportError
from edgepose.export.int8_scope import call_paths, describe, float_scope, tflite_pattern, tflite_patterns
from edgepose.export.targets.base import ExportContext, Target
from edgepose.export.targets.tflite_fix import TRANSPOSE_CONV_BIAS, with_1d_tconv_bias
from edgepose.heads import get_head
from edgepose.utils.native_stderr import native_stderr_held

MODEL_FILE = "model.tflite"
METHODS = ("minmax",)  # ai-edge-quantizer MIN_MAX_UNIFORM_QUANT
# interpreter op name → ai-edge-quantizer operation name, for the ops quantizable_layers lists
LAYER_OPS = {"CONV_2D": "CONV_2D", "DEPTHWISE_CONV_2D": "DEPTHWISE_CONV_2D",
             "TRANSPOSE_CONV": "CONV_2D_TRANSPOSE", "FULLY_CONNECTED": "FULLY_CONNECTED"}
LAYER_CLASSES = ("Conv1d", "Conv2d", "ConvTranspose2d", "Linear")
# litert-torch names a tensor after the module path, e.g. '...graph_heatmap.HeatmapDecode_decoder;33' (an op's
# scope is its output names joined by ';'); the ops that write the model's outputs carry the signature's
# names instead ('serving_default_output_0_output'), so _decoder_scope matches those by name
_DECODER_SCOPE = r"Decode_decoder(?:[/;]|$)"
# codecs whose in-graph decoder made the whole per-frame call faster than the host decode on XNNPACK, at fp32 and
# INT8 (2 threads, batch 1, `benchmarks/decode_placement.py`, docs/benchmarks.md "Decode placement on TFLite"):
# graph / host 0.82-0.95, the MoveNet multi-person decode 4.8 ms on the host against 0.2 ms in the graph
GRAPH_DECODE_CODECS = frozenset({"heatmap", "centernet", "movenet", "movenet-multipose"})


@contextlib.contextmanager
def _quiet_litert() -> Iterator[None]:
    """Hide litert-torch's progress lines for the conversion, unless the user set LITERT_TORCH_SHOW_PROGRESS."""
    key = "LITERT_TORCH_SHOW_PROGRESS"
    if key in os.environ:
        yield
        return
    os.environ[key] = "n"
    try:
        with warnings.catch_warnings():
            # the converter stack's own deprecation chatter (torch pytree, JAX fork notices) is not the user's
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
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

    with native_stderr_held():  # the converter stack's import-time prints (absl, torchao's optional kernels)
        litert_torch = require("litert_torch", "the tflite target")
    return litert_torch.to_channel_last_io(wrap_for_export(ctx.model, ctx.spec.decode), args=[0]).eval()


def convert_fp32(ctx: ExportContext, module, sample, path: Path) -> dict:
    """The float model (:func:`float_model`) → ``path``; returns the manifest's 'quantization' details (none)."""
    src = float_model(ctx, module, sample)
    if Path(src) != Path(path):
        shutil.copyfile(src, path)
    return {}


def litert_convert(ctx: ExportContext, module, sample, path: Path) -> None:
    """litert-torch float conversion → ``path`` (the one place the converter runs)."""
    from edgepose.utils.lazy import require

    litert_torch = require("litert_torch", "the tflite target")
    try:
        with _quiet_litert(), native_stderr_held():  # TF / MLIR C++ info lines; kept when conversion fails
            edge = litert_torch.convert(module, (sample,))
            edge.export(str(path))
    except Exception as exc:  # litert-torch raises torch.export / MLIR / converter errors of many types
        text = str(exc).strip().splitlines()
        raise ExportError(f"litert-torch could not convert {ctx.model.edgepose_meta.name} to TFLite: "
                          f"{(text[0] if text else type(exc).__name__)[:300]}") from exc
    fixed = with_1d_tconv_bias(path)
    if fixed != path:
        # XNNPACK also refuses a TRANSPOSE_CONV whose bias is (1, 1, 1, C) and leaves it to the slower built-in
        # kernel (a trained SimpleBaseline-MNv2 deconv head: 54.5 ms → 22.6 ms with the 1-D bias, 2 threads).
        os.replace(fixed, path)


def float_model(ctx: ExportContext, module, sample) -> Path:
    """The litert-torch fp32 model in the workspace, converted once per export (fp16 / int8 start from it;
    the sensitivity loop rebuilds int8 many times), or copied from the conversion cache
    (:mod:`edgepose.export.convert_cache`, opt-in)."""
    from edgepose.export import convert_cache

    path = Path(ctx.workspace) / f"tflite-fp32-{ctx.spec.decode}.tflite"
    if path.is_file():
        return path
    key = None
    if convert_cache.enabled():
        key = convert_cache.cache_key(module, sample, converter="litert-torch",
                                      extra={"meta": ctx.model.edgepose_meta.to_dict(), "decode": ctx.spec.decode})
        if convert_cache.fetch(key, ".tflite", path):
            return path
    litert_convert(ctx, module, sample, path)
    if key is not None:
        convert_cache.store(key, ".tflite", path)
    return path


@dataclass(frozen=True)
class Layer:
    """A quantizable op of the fp32 model: ``name`` (PyTorch module name, else ``<op>_<index>``), the
    interpreter's op name and ai-edge-quantizer's op scope (its output tensor names joined by ';').
    ``float_only``: ai-edge-quantizer cannot quantize it (a TRANSPOSE_CONV whose bias is not 1-D)."""

    name: str
    op: str
    scope: str
    float_only: bool = False


def module_names(tensor_names: list[str], modules: dict[tuple[str, ...], str]) -> list[str]:
    """PyTorch module names in litert-torch tensor names ('.../pkg.Sequential_features/.../pkg.Conv2d_0;1'): for
    each ';'-separated location of a conv / linear class, the longest suffix of its 'Class_attribute' segments that
    is the call path of exactly one module (``modules``: call path → module name, see
    :func:`edgepose.export.int8_scope.call_path`). Several when MLIR fused locations (parallel heads on one input)."""
    found: list[str] = []
    for tensor in tensor_names:
        for part in tensor.split(";"):
            segments = [seg.rsplit(".", 1)[-1] for seg in part.split("/")]
            if segments[-1].partition("_")[0] not in LAYER_CLASSES:
                continue
            suffixes = (tuple(segments[i:]) for i in range(len(segments)))  # longest first
            name = next((modules[key] for key in suffixes if key in modules), None)
            if name is not None and name not in found:
                found.append(name)
    return found


def layer_table(path: Path, model) -> list[Layer]:
    """Quantizable ops (conv / depthwise / transposed conv / fully connected) of ``path``, graph order."""
    from edgepose.runtimes.tflite import interpreter_class

    it = interpreter_class()(model_path=str(path))
    details = {d["index"]: d for d in it.get_tensor_details()}
    names = {i: d["name"] for i, d in details.items()}
    # modules that share a call path (ModuleList levels leave no segment) are not named: '<op>_<index>' instead
    modules = {path: names[0] for path, names in call_paths(model).items() if len(names) == 1}
    layers, seen = [], Counter()
    for op in it._get_ops_details():  # noqa: SLF001 — the interpreter's only op listing
        if op["op_name"] not in LAYER_OPS:
            continue
        outs = [names[i] for i in op["outputs"] if i in names and names[i]]
        if re.search(_DECODER_SCOPE, ";".join(outs)):
            continue
        candidates = module_names(outs, modules) or [f"{op['op_name'].lower()}_{op['index']}"]
        name = next((c for c in candidates if c not in seen), candidates[0])
        seen[name] += 1
        bias = list(op["inputs"])[TRANSPOSE_CONV_BIAS:TRANSPOSE_CONV_BIAS + 1]
        float_only = (op["op_name"] == "TRANSPOSE_CONV" and bool(bias) and bias[0] in details
                      and len(details[bias[0]]["shape"]) != 1)
        layers.append(Layer(name if seen[name] == 1 else f"{name}#{seen[name]}", op["op_name"],
                            ";".join(outs) + ";", float_only))
    return layers


@contextlib.contextmanager
def _quiet_aeq() -> Iterator[None]:
    """ai-edge-quantizer draws tqdm progress bars on stderr for every calibration and quantization."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _aeq():
    from edgepose.utils.lazy import require

    require("ai_edge_quantizer", "TFLite INT8 / FP16 quantization")
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    return quantizer, qtyping, AlgorithmName


def _int8_recipe(src: Path, *, float_io: bool, keep: list[Layer], float_scope: str | None = None):
    """An ai-edge-quantizer Quantizer over ``src`` with the full-INT8 recipe and the float exceptions: ops whose
    scope matches ``float_scope`` (:func:`_decoder_scope`) stay float."""
    quantizer, qtyping, algo = _aeq()
    op = qtyping.TFLOperationName
    qt = quantizer.Quantizer(str(src))
    qt.add_static_config(".*", op.ALL_SUPPORTED, activation_num_bits=8, weight_num_bits=8)
    if float_io:
        for virtual in (op.INPUT, op.OUTPUT):
            qt.update_quantization_recipe(".*", virtual, algorithm_key=algo.NO_QUANTIZE)
    if float_scope:
        qt.update_quantization_recipe(float_scope, op.ALL_SUPPORTED, algorithm_key=algo.NO_QUANTIZE)
    for layer in keep:
        qt.update_quantization_recipe(f"^{re.escape(layer.scope)}$", op(LAYER_OPS[layer.op]),
                                      algorithm_key=algo.NO_QUANTIZE)
    return qt


_CALIBRATION_CACHE: dict[tuple, dict] = {}


def _calibrate(src: Path, calib, signature: tuple[str, str]) -> dict:
    """MinMax ranges of every tensor of ``src`` over ``calib`` (NHWC batches of one), run in the TFLite
    interpreter; cached per (model file, calibration digest) for the sensitivity loop's rebuilds.

    The range of a tensor is its smallest min and largest max over all samples (``qsv_utils.min_max_update``),
    as ONNX Runtime's and OpenVINO's MinMax: ``Quantizer.calibrate`` would keep a moving average of per-sample
    extremes, which clips the rare large values heatmap peaks are made of (see the module docstring).
    """
    key = (str(src), src.stat().st_mtime_ns, calib.digest)
    if key not in _CALIBRATION_CACHE:
        from ai_edge_quantizer import calibrator, recipe_manager
        from ai_edge_quantizer.utils import qsv_utils

        recipe = recipe_manager.RecipeManager()
        recipe.load_quantization_recipe(_int8_recipe(src, float_io=False, keep=[])
                                        .get_quantization_recipe())
        data = {signature[0]: [{signature[1]: b} for b in calib.batches("NHWC")]}
        _CALIBRATION_CACHE.clear()
        with _quiet_aeq():  # also hides the interpreter's warning about preserve_all_tensors
            run = calibrator.Calibrator(str(src), num_threads=min(4, os.cpu_count() or 1),
                                        qsv_update_func=qsv_utils.min_max_update)
            run.calibrate(data, recipe)
        _CALIBRATION_CACHE[key] = run.get_model_qsvs()
    return _CALIBRATION_CACHE[key]


def _decoder_scope(src: Path) -> str:
    """Scope regex of the in-graph decoder's ops and of the ops writing the model's outputs (all decoder ops when
    the decoder is in the graph): they stay float, int8 keypoints would have (input size / 255) px steps."""
    from edgepose.runtimes.tflite import interpreter_class

    names = [d["name"] for d in interpreter_class()(model_path=str(src)).get_output_details()]
    return f"{_DECODER_SCOPE}|(?:^|;)(?:{'|'.join(re.escape(n) for n in names)})(?:;|$)"


def _signature(src: Path) -> tuple[str, str]:
    from edgepose.runtimes.tflite import interpreter_class

    sigs = interpreter_class()(model_path=str(src)).get_signature_list()
    if len(sigs) != 1:
        raise ExportError(f"{src.name} has {len(sigs)} signatures; expected the one litert-torch writes")
    key = next(iter(sigs))
    return key, sigs[key]["inputs"][0]


def _keep_float(ctx: ExportContext, layers: list[Layer]) -> tuple[list[Layer], list[str]]:
    """(layers kept float, names of those kept automatically); unknown names in ctx.exclude → ConfigError."""
    by_name = {layer.name: layer for layer in layers}
    unknown = sorted(set(ctx.exclude) - set(by_name))
    if unknown:
        raise ConfigError(f"layers to keep in float not in the TFLite model: {unknown[:3]}; expected names "
                          f"from quantizable_layers() (e.g. {layers[-1].name if layers else 'none'!r})")
    auto = [layer.name for layer in layers if layer.float_only and layer.name not in ctx.exclude]
    keep = [by_name[n] for n in sorted(set(ctx.exclude))] + [by_name[n] for n in auto]
    return keep, auto


def _outside_scope(layers: list[Layer], int8_modules: tuple[str, ...], model) -> str | None:
    """Scope regex of the ops outside ``int8_modules`` (None: quantize the whole network); ConfigError when no
    conv / fully-connected layer lies inside one of the names."""
    if not int8_modules:
        return None
    patterns = tflite_patterns(model, int8_modules)  # the model's call paths walked once
    for module, pattern in patterns.items():
        if not any(re.search(pattern, layer.scope) for layer in layers):
            raise ConfigError(f"int8_modules {module} matched no layer of the TFLite model; expected module names "
                              f"its layers carry (e.g. {layers[0].name if layers else 'none'!r})")
    return float_scope("|".join(patterns.values()))


def convert_int8(ctx: ExportContext, module, sample, path: Path) -> dict:
    """Full-INT8 ``path`` from the fp32 model and ``ctx.calib``; returns the manifest's 'quantization'."""
    if ctx.calib is None or len(ctx.calib) == 0:
        raise ConfigError("TFLite INT8 needs calibration data (calib=SOURCE / --calib SOURCE), got none")
    if ctx.method not in METHODS:
        raise ConfigError(f"TFLite INT8 calibration method must be one of {', '.join(METHODS)}, got {ctx.method!r}")
    src = with_1d_tconv_bias(float_model(ctx, module, sample))
    layers = layer_table(src, ctx.model)
    keep, auto = _keep_float(ctx, layers)
    outside = _outside_scope(layers, ctx.int8_modules, ctx.model)
    float_io = not bool(ctx.options.get("int8_io", False))
    ranges = _calibrate(src, ctx.calib, _signature(src))
    decoder = ctx.spec.decode == "graph"
    float_scope = _decoder_scope(src) if decoder else None
    recipe_scope = "|".join(s for s in (float_scope, outside) if s) or None
    qt = _int8_recipe(src, float_io=float_io, keep=keep, float_scope=recipe_scope)
    try:
        with _quiet_aeq():
            qt.quantize(ranges, enable_progress_report=False).export_model(str(path), overwrite=True)
    except Exception as exc:  # ai-edge-quantizer raises ValueError / RuntimeError from deep inside
        raise ExportError(f"ai-edge-quantizer could not quantize {ctx.model.edgepose_meta.name}: "
                          f"{_first_line(exc)}") from exc
    from edgepose.runtimes.tflite import model_ops, quantized_share

    ops = model_ops(path)
    # the share describes the model: the in-graph decoder (float by design) and its output ops not counted
    model_part = model_ops(path, float_scope) if decoder else ops
    return {"method": ctx.method, "tool": f"ai-edge-quantizer {_version('ai-edge-quantizer')}",
            "recipe": "static_wi8_ai8", "weights": "int8 per-channel symmetric",
            "activations": "int8 (MinMax: min / max of each tensor over the whole calibration set)",
            "io": "float32" if float_io else "int8",
            "calibration": ctx.calib.describe(), "kept_float": sorted(set(ctx.exclude)),
            "kept_float_auto": auto, "float_decoder": decoder, "int8_modules": describe(ctx.int8_modules),
            "int8_op_share": round(quantized_share(model_part), 4), "ops": _op_counts(ops)}


def convert_fp16(ctx: ExportContext, module, sample, path: Path) -> dict:
    """fp32 model with float16 weights (weight-only FLOAT_CASTING); compute stays float32 on the CPU."""
    quantizer, qtyping, algo = _aeq()
    src = float_model(ctx, module, sample)
    qt = quantizer.Quantizer(str(src))
    qt.add_weight_only_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 16, algorithm_key=algo.FLOAT_CASTING)
    try:
        with _quiet_aeq():
            qt.quantize(None, enable_progress_report=False).export_model(str(path), overwrite=True)
    except Exception as exc:  # as in convert_int8
        raise ExportError(f"ai-edge-quantizer could not cast the weights to float16: {_first_line(exc)}") from exc
    return {"method": "float_casting", "tool": f"ai-edge-quantizer {_version('ai-edge-quantizer')}",
            "weights": "float16 (GPU delegates compute fp16; XNNPACK dequantizes to fp32 at load)",
            "activations": "float32"}


CONVERTERS: dict[str, Callable[..., dict]] = {"fp32": convert_fp32, "fp16": convert_fp16, "int8": convert_int8}


def _op_counts(ops: list[tuple[str, str]]) -> dict[str, int]:
    return dict(sorted(Counter(f"{op}:{dtype}" for op, dtype in ops).items()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def output_names(ctx: ExportContext, count: int) -> list[str]:
    """Logical output names (heatmaps / hm, reg, ... / keypoints, scores, boxes), as in the ONNX export."""
    from edgepose.export.onnx import output_names as graph_output_names

    names = graph_output_names(ctx.spec.kind, ctx.spec.codec, ctx.spec.decode)
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
    layout = "NHWC"

    def resolve_decode(self, decode: str, kind: str, codec: dict, precision: str = "fp32") -> str:
        """'auto' → 'graph' at fp32 and INT8 for the codecs measured faster decoded in the graph on XNNPACK
        (``GRAPH_DECODE_CODECS``; the decoder stays float in INT8 models, same gate result as host decode); 'host'
        at fp16 (made for GPU delegates: gathers in the graph can push them back to the CPU, and fp16 arithmetic
        collapses sub-pixel refinement) and for the other codecs. Explicit values are kept."""
        if decode == "auto":
            graph = precision in ("fp32", "int8") and get_head(kind).codec_kind(codec) in GRAPH_DECODE_CODECS
            return "graph" if graph else "host"
        return super().resolve_decode(decode, kind, codec, precision)

    def build(self, ctx: ExportContext) -> dict:
        import torch

        self.check_precision(ctx.precision)
        if ctx.exclude and ctx.precision != "int8":
            raise ConfigError(f"layers to keep in float only apply to precision int8, got precision "
                              f"{ctx.precision!r} with {len(ctx.exclude)} excluded layer(s)")
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

    def quantizable_layers(self, ctx: ExportContext) -> list[str]:
        """Names of the conv / depthwise / transposed-conv / fully-connected ops of the fp32 TFLite model, in
        graph order: the PyTorch module names (e.g. 'features.0.0', 'upsample_layers.1', 'final_layer'),
        ``<op>_<index>`` where litert-torch's tensor names do not lead back to a module. The names
        ``ctx.exclude`` takes (ai-edge-quantizer keeps those ops float); those inside ``ctx.int8_modules``."""
        layers = layer_table(float_model(ctx, nhwc_module(ctx), sample_input(ctx.spec)), ctx.model)
        if not ctx.int8_modules:
            return [layer.name for layer in layers]
        inside = re.compile(tflite_pattern(ctx.model, ctx.int8_modules))
        return [layer.name for layer in layers if inside.search(layer.scope)]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


TARGET = TFLiteTarget()
