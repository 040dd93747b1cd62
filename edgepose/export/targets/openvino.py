"""OpenVINO target: the exported ONNX converted to OpenVINO IR (``model.xml`` + ``model.bin``).

Steps: ``ov.convert_model(model.onnx)`` → a per-precision step (``OpenVINOTarget.optimize``) →
``ov.save_model``. Precisions:

- ``fp32``: fp32 weights (``compress_to_fp16=False``: ``save_model`` would otherwise store them as fp16), run
  at inference precision f32 (so AMX / AVX512-BF16 CPUs do not switch to bf16).
- ``fp16``: fp16 weights (``compress_to_fp16=True``: half the file) and inference precision ``f16``. Only
  devices with f16 arithmetic gain speed from it: Intel GPUs and NPUs, and CPUs with AVX512-FP16 / AMX-FP16
  (Sapphire Rapids and later). On other CPUs OpenVINO computes an ``f16`` request in bf16 (CPUs with
  AVX512-BF16 / AMX) or f32, so an fp16 bundle is only smaller there, not faster — for a CPU, use int8.
- ``int8``: NNCF post-training quantization of the OpenVINO model (``nncf.quantize``) with the calibration
  set (every sample: ``subset_size=len(calib)``): FakeQuantize before every Convolution / GroupConvolution /
  ConvolutionBackpropData / MatMul (the quantized ops run u8/i8), int8 per-channel weights, fast bias
  correction. Layers named in ``ctx.exclude`` (names from ``quantizable_layers``) and the in-graph decoder
  go into NNCF's ignored scope and stay float. Preset ``performance`` (symmetric activations, the fastest on
  CPUs) or ``mixed`` (asymmetric activations, for activations not centred on zero), option ``preset``.
  The bundle runs at inference precision f32 by default: the quantized ops run int8 whatever the hint,
  and the layers left in float stay f32 (not bf16) so the bundle computes what the accuracy gate measured.

The manifest records ``openvino.inference_precision`` — the precision the bundle was checked at, which the
runtime uses unless told otherwise (export option ``inference_precision`` overrides it, e.g. 'bf16').
Auto-generated node names (``Constant_250252``: a process-wide counter) are renumbered by graph position
before saving, so that the same model and calibration give byte-identical files.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

from edgepose.errors import ConfigError, ExportError
from edgepose.export.int8_scope import describe, float_names, inside_names
from edgepose.export.targets.base import ExportContext, Target
from edgepose.heads import get_head
from edgepose.utils.lazy import require

MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
# bundle precision → OpenVINO inference precision the bundle is checked (and by default run) at
INFERENCE_PRECISION = {"fp32": "f32", "fp16": "f16", "int8": "f32"}
INFERENCE_PRECISIONS = ("f32", "f16", "bf16")
QUANTIZABLE_TYPES = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")
DECODER_PREFIX = "/decoder/"
METHODS = ("minmax",)  # NNCF's own min/max statistics (+ fast bias correction); no other choice offered
PRESETS = ("performance", "mixed")
_AUTO_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*_\d+$")


class OpenVINOTarget(Target):
    name = "openvino"
    layout = "NCHW"

    def build(self, ctx: ExportContext) -> dict:
        """ONNX (ctx.onnx.path) → IR in ctx.dir; returns the manifest entries."""
        ov = require("openvino", "the openvino export target")
        self.check_precision(ctx.precision)
        ov_model, quantization = self.optimize(convert(ctx), ctx)
        stable_names(ov_model)
        ov.save_model(ov_model, str(ctx.dir / MODEL_FILE), compress_to_fp16=ctx.precision == "fp16")
        if not (ctx.dir / WEIGHTS_FILE).is_file():
            raise ExportError(f"ov.save_model wrote no {WEIGHTS_FILE} beside {MODEL_FILE} in {ctx.dir}")
        extra = {"model_file": MODEL_FILE, "weights_file": WEIGHTS_FILE,
                 "openvino": {"inference_precision": inference_precision(ctx),
                              "weights": _weight_types(ov.Core().read_model(str(ctx.dir / MODEL_FILE)))}}
        if quantization:
            extra["quantization"] = quantization
        return extra

    def resolve_decode(self, decode: str, kind: str, codec: dict, precision: str = "fp32") -> str:
        """'auto' at fp16 → host for the DARK / UDP heatmap refinement: under an f16 request the CPU plugin
        computes in bf16 (or f16). The first in-graph decoder (logs of whole maps floored at 1e-10) fell back
        to the integer argmax there (AP 49.7 vs 54.3 for the default top-down model); the window decoder
        holds (AP 54.2, drop 0.11) but moves keypoints 0.24 px on average from fp32 against 0.12 px with the
        host decode (drop 0.05), and costs as much as the host decode on a CPU, so host stays the default
        (``edgepose export ... --precision fp16 --decode graph|host`` gives these gate lines). Marking the ops
        ``disable_fp16_compression`` did not keep them f32 on the CPU."""
        if decode == "auto" and precision == "fp16" and get_head(kind).refines_in_graph(codec):
            return "host"
        return super().resolve_decode(decode, kind, codec, precision)

    def optimize(self, ov_model: Any, ctx: ExportContext) -> tuple[Any, dict | None]:
        """The precision-specific step between conversion and saving → (model, manifest 'quantization')."""
        if ctx.precision == "int8":
            return quantize_nncf(ov_model, ctx)
        if ctx.exclude:
            raise ConfigError(f"layers to keep in float only apply to precision int8, got precision "
                              f"{ctx.precision!r} with {len(ctx.exclude)} excluded layer(s)")
        return ov_model, None  # fp32: unchanged; fp16: the weights are compressed by save_model

    def quantizable_layers(self, ctx: ExportContext) -> list[str]:
        """Friendly names of the Convolution / GroupConvolution / ConvolutionBackpropData / MatMul ops NNCF
        quantizes, in graph order (in-graph decoder excluded), e.g. '/features/features.0/features.0.0/Conv/
        WithoutBiases'; those inside ``ctx.int8_modules``. These are the names ``ctx.exclude`` takes (NNCF
        ignored scope)."""
        return inside_names(quantizable_ops(convert(ctx)), ctx.int8_modules)

    def parity_options(self) -> dict:
        return {"device": "CPU", "inference_precision": "f32"}

    def parity_runtime(self, bundle) -> Any | None:
        """The runtime the gates check: CPU at the bundle's own inference precision (the manifest's: f32 for
        fp32 and int8 bundles, f16 for fp16 ones), so the gate measures what the bundle runs."""
        from edgepose.runtimes import openvino as backend

        if not backend.is_available():
            return None
        options = dict(self.parity_options(), inference_precision=backend.default_inference_precision(bundle.manifest))
        return backend.OpenVINORuntime.from_bundle(bundle, **options).load()


def convert(ctx: ExportContext) -> Any:
    """``ov.convert_model`` of the exported ONNX; conversion errors → ExportError."""
    ov = require("openvino", "the openvino export target")
    try:
        return ov.convert_model(str(ctx.onnx.path))
    except Exception as exc:  # noqa: BLE001 — ovc.Error, OpConversionFailure derive from Exception only
        raise ExportError(f"OpenVINO cannot convert {ctx.onnx.path.name}: {_message(exc)}") from None


def inference_precision(ctx: ExportContext) -> str:
    """The precision recorded in the manifest: export option ``inference_precision``, else by precision."""
    asked = ctx.options.get("inference_precision")
    if asked is None:
        return INFERENCE_PRECISION[ctx.precision]
    if asked not in INFERENCE_PRECISIONS:
        raise ConfigError(f"inference_precision must be one of {', '.join(INFERENCE_PRECISIONS)}, got {asked!r}")
    return asked


def quantizable_ops(ov_model: Any) -> list[str]:
    return [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_type_name() in QUANTIZABLE_TYPES and not op.get_friendly_name().startswith(DECODER_PREFIX)]


def decoder_ops(ov_model: Any) -> list[str]:
    """Names of the in-graph decoder's ops (kept float: argmax / TopK ties must not move)."""
    return [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_friendly_name().startswith(DECODER_PREFIX) and op.get_type_name() != "Constant"]


def _preset(ctx: ExportContext):
    nncf = require("nncf", "OpenVINO INT8 quantization")
    preset = ctx.options.get("preset", "performance")
    if preset not in PRESETS:
        raise ConfigError(f"OpenVINO INT8 preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return preset, getattr(nncf.QuantizationPreset, preset.upper())


def _check_int8_inputs(ov_model: Any, ctx: ExportContext, outside: list[str]) -> list[str]:
    """Validate calibration data, method and exclusions; returns the ignored-scope names (``outside``: the ops
    outside ``ctx.int8_modules``)."""
    if ctx.calib is None or len(ctx.calib) == 0:
        raise ConfigError("OpenVINO INT8 needs calibration data (calib=SOURCE / --calib SOURCE), got none")
    if ctx.method not in METHODS:
        raise ConfigError(f"OpenVINO INT8 calibration method must be one of {', '.join(METHODS)} "
                          f"(NNCF's min/max statistics), got {ctx.method!r}")
    known = set(quantizable_ops(ov_model))
    unknown = sorted(set(ctx.exclude) - known)
    if unknown:
        raise ConfigError(f"layers to keep in float not in the OpenVINO model: {unknown[:3]}; expected names "
                          "from quantizable_layers() (e.g. '/final_layer/Conv/WithoutBiases')")
    return sorted(set(ctx.exclude) | set(outside)) + decoder_ops(ov_model)


def outside_ops(ov_model: Any, int8_modules: tuple[str, ...]) -> list[str]:
    """Friendly names of the network's ops (decoder, constants and I/O excluded) outside ``int8_modules``."""
    names = [op.get_friendly_name() for op in ov_model.get_ordered_ops()
             if op.get_type_name() not in ("Constant", "Parameter", "Result")
             and not op.get_friendly_name().startswith(DECODER_PREFIX)]
    return float_names(names, int8_modules, "OpenVINO model")


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF logs INFO lines and draws progress bars (rich, on stdout) for every call; keep its warnings only."""
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def quantize_nncf(ov_model: Any, ctx: ExportContext) -> tuple[Any, dict]:
    """NNCF INT8 of ``ov_model`` with ``ctx.calib`` (NCHW float32 batches of one), ``ctx.exclude`` float."""
    nncf = require("nncf", "OpenVINO INT8 quantization")
    outside = outside_ops(ov_model, ctx.int8_modules)
    ignored = _check_int8_inputs(ov_model, ctx, outside)
    preset_name, preset = _preset(ctx)
    samples = list(ctx.calib.batches("NCHW"))
    try:
        with _quiet_nncf():
            quantized = nncf.quantize(ov_model, nncf.Dataset(samples), preset=preset, subset_size=len(samples),
                                      ignored_scope=nncf.IgnoredScope(names=ignored))
    except Exception as exc:  # noqa: BLE001 — NNCF raises its own errors and OpenVINO's
        raise ExportError(f"NNCF could not quantize the OpenVINO model: {_message(exc)}") from None
    fq = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ordered_ops())
    if fq == 0:
        raise ExportError("NNCF inserted no FakeQuantize op: nothing in the model was quantized "
                          f"({len(ignored)} op(s) in the ignored scope)")
    info = {"method": ctx.method, "tool": f"nncf {_version('nncf')}", "preset": preset_name,
            "subset_size": len(samples), "fast_bias_correction": True,
            "weights": "int8 per-channel symmetric",
            "activations": ("8-bit symmetric (u8 after ReLU, i8 otherwise)" if preset_name == "performance"
                            else "8-bit asymmetric"),
            "calibration": ctx.calib.describe(), "kept_float": sorted(set(ctx.exclude)),
            "int8_modules": describe(ctx.int8_modules),
            "float_outside_int8_modules": len(outside),
            "float_decoder": bool(decoder_ops(ov_model)), "fake_quantize_ops": int(fq)}
    return quantized, info


def stable_names(ov_model: Any) -> None:
    """Rename auto-generated node names (``Type_<global counter>``) to ``Type_<graph position>`` so that
    two builds in one process write identical IR; names from the ONNX graph are kept."""
    taken = {op.get_friendly_name() for op in ov_model.get_ordered_ops()}
    for i, op in enumerate(ov_model.get_ordered_ops()):
        name = op.get_friendly_name()
        if _AUTO_NAME.match(name) and op.get_type_name() not in ("Parameter", "Result"):
            new = f"{name.rsplit('_', 1)[0]}_n{i}"
            if new not in taken:
                op.set_friendly_name(new)


def _weight_types(ov_model: Any) -> dict[str, int]:
    """Count of weight constants (more than one element) per element type, e.g. {'f32': 52}."""
    counts: dict[str, int] = {}
    for op in ov_model.get_ordered_ops():
        if (op.get_type_name() == "Constant" and op.get_output_partial_shape(0).is_static
                and _size(op.get_output_shape(0)) > 1):
            t = op.get_output_element_type(0).get_type_name()
            counts[t] = counts.get(t, 0) + 1
    return dict(sorted(counts.items()))


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _message(exc: BaseException) -> str:
    from edgepose.runtimes.openvino import ov_message

    return ov_message(exc)


TARGET = OpenVINOTarget()
