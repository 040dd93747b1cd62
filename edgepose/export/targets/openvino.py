"""OpenVINO target: the exported ONNX converted to OpenVINO IR (``model.xml`` + ``model.bin``).

Steps: ``ov.convert_model(model.onnx)`` → a per-precision step (fp32: none; FP16 weight compression and
NNCF INT8 plug in here later) → ``ov.save_model(..., compress_to_fp16=False)``. ``save_model`` would
otherwise store fp32 weights as fp16 by default, so an "fp32" bundle would not be fp32.

The manifest records ``openvino.inference_precision`` — the precision the bundle was checked at, which the
runtime uses unless told otherwise ('f32' for fp32, so AMX / AVX512-BF16 CPUs do not switch to bf16).
"""

from __future__ import annotations

from typing import Any

from edgepose.errors import ExportError
from edgepose.export.targets.base import ExportContext, Target
from edgepose.utils.lazy import require

MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
# bundle precision → OpenVINO inference precision the bundle is checked (and by default run) at
INFERENCE_PRECISION = {"fp32": "f32"}


class OpenVINOTarget(Target):
    name = "openvino"
    backend = "openvino"
    package = "openvino"
    precisions = ("fp32",)
    layout = "NCHW"

    def build(self, ctx: ExportContext) -> dict:
        """ONNX (ctx.onnx.path) → IR in ctx.dir; returns the manifest entries."""
        ov = require("openvino", "the openvino export target")
        try:
            ov_model = ov.convert_model(str(ctx.onnx.path))
        except Exception as exc:  # noqa: BLE001 — ovc.Error, OpConversionFailure derive from Exception only
            raise ExportError(f"OpenVINO cannot convert {ctx.onnx.path.name}: {_message(exc)}") from None
        ov_model = self.optimize(ov_model, ctx)
        ov.save_model(ov_model, str(ctx.dir / MODEL_FILE), compress_to_fp16=False)
        if not (ctx.dir / WEIGHTS_FILE).is_file():
            raise ExportError(f"ov.save_model wrote no {WEIGHTS_FILE} beside {MODEL_FILE} in {ctx.dir}")
        return {"model_file": MODEL_FILE, "weights_file": WEIGHTS_FILE,
                "openvino": {"inference_precision": INFERENCE_PRECISION[ctx.precision],
                             "weights": _weight_types(ov_model)}}

    def optimize(self, ov_model: Any, ctx: ExportContext) -> Any:
        """The precision-specific step between conversion and saving (fp32: the model unchanged)."""
        steps = {"fp32": _keep}
        return steps[ctx.precision](ov_model, ctx)

    def parity_options(self) -> dict:
        return {"device": "CPU", "inference_precision": "f32"}


def _keep(ov_model: Any, ctx: ExportContext) -> Any:
    return ov_model


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


def _message(exc: BaseException) -> str:
    from edgepose.runtimes.openvino import ov_message

    return ov_message(exc)


TARGET = OpenVINOTarget()
