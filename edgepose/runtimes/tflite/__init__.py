"""TFLite / LiteRT backend: ``ai_edge_litert`` (XNNPACK CPU delegate by default), ``tflite_runtime`` as fallback.

Device side: numpy only besides the interpreter package. The interpreter runs a fixed batch of 1 (the base
class splits larger batches). Quantized I/O is handled here: an int8 / uint8 input tensor with stored
quantization parameters receives float32 tensors (``spec.input.dtype == 'float32'``) quantized with its scale
and zero point; int8 / uint8 outputs come back dequantized to float32.

Output order: the interpreter lists outputs in the subgraph's order, which litert-torch writes in the order
the PyTorch module returned them (``..._output_<i>_output``). Tensor *indices* are not in that order, and the
signature lists its output keys alphabetically (``output_10`` before ``output_2``), so neither is used. Bundles
written by the tflite target name their output tensors in the manifest (``io.outputs[*].tensor``) and that
order wins; foreign models keep the interpreter's order.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np

from edgepose.errors import BackendUnavailable, BundleError
from edgepose.runtimes.base import Runtime
from edgepose.runtimes.spec import ModelSpec
from edgepose.utils.cores import usable_cores
from edgepose.utils.lazy import is_importable
from edgepose.utils.native_stderr import native_stderr_held
from edgepose.utils.options import check_threads

QUANTIZED = ("int8", "uint8")
_OUTPUT_INDEX = re.compile(r"output_(\d+)")


def is_available() -> bool:
    return is_importable("ai_edge_litert") or is_importable("tflite_runtime")


def unavailable_reason() -> str:
    return "pip install 'edgepose[tflite]' (installs ai-edge-litert)"


def interpreter_class():
    """``ai_edge_litert.interpreter.Interpreter``, or ``tflite_runtime``'s when ai-edge-litert is absent."""
    errors = []
    for module in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            return importlib.import_module(module).Interpreter
        except (ImportError, AttributeError, RuntimeError) as exc:  # tflite_runtime 2.14 + numpy 2: AttributeError
            errors.append(f"{module}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise BackendUnavailable(f"no TFLite interpreter could be imported ({'; '.join(errors)}): {unavailable_reason()}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _order_outputs(details: list[dict], names: list[str] | None, path: Path) -> list[dict]:
    """Output details in the model's order: as named by ``names`` (manifest), else the interpreter's order."""
    if names is None:
        return list(details)
    by_name = {d["name"]: d for d in details}
    missing = [n for n in names if n not in by_name]
    if missing or len(names) != len(details):
        raise BundleError(f"{path} has output tensors {sorted(by_name)}, the manifest lists {names}")
    return [by_name[n] for n in names]


def _quant(detail: dict) -> tuple[float, int]:
    scale, zero = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero)


class TFLiteRuntime(Runtime):
    """Runs a ``.tflite`` model. ``threads``: interpreter CPU threads (None: every core this process may use;
    LiteRT's own default would run XNNPACK on one thread)."""

    backend = "tflite"

    def __init__(self, model_path: str | Path, spec: ModelSpec, *, threads: int | None = None,
                 output_tensors: list[str] | None = None):
        super().__init__(spec)
        self.model_path, self.threads = Path(model_path), check_threads(threads)
        self.output_tensors = list(output_tensors) if output_tensors is not None else None
        self.interpreter = None
        self._input: dict = {}
        self._outputs: list[dict] = []

    @classmethod
    def from_bundle(cls, bundle, **options) -> TFLiteRuntime:
        outputs = (bundle.manifest.get("io") or {}).get("outputs")
        if outputs and "output_tensors" not in options:
            options["output_tensors"] = [o["tensor"] for o in outputs]
        return cls(bundle.model_path, bundle.spec(), **options)

    def load_impl(self) -> None:
        interpreter = interpreter_class()
        if not self.model_path.is_file():
            raise BundleError(f"TFLite model not found: {self.model_path}")
        try:
            with native_stderr_held():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on every load
                it = interpreter(model_path=str(self.model_path), num_threads=self.threads or usable_cores())
                it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"the TFLite interpreter cannot load {self.model_path}: {_first_line(exc)}") from None
        inputs = it.get_input_details()
        if len(inputs) != 1:
            raise BundleError(f"{self.model_path} has {len(inputs)} inputs; edgepose runs single-input models")
        self._input = inputs[0]
        self._outputs = _order_outputs(it.get_output_details(), self.output_tensors, self.model_path)
        self._check_input_quantization()
        self.interpreter = it

    def _check_input_quantization(self) -> None:
        dtype = np.dtype(self._input["dtype"]).name
        if dtype in QUANTIZED and self.spec.input.dtype == "float32" and _quant(self._input)[0] <= 0:
            raise BundleError(f"{self.model_path} takes {dtype} input without quantization parameters, but the "
                              "spec says float32; expected input dtype 'uint8' in the spec (raw pixels)")

    def close_impl(self) -> None:
        self.interpreter, self._input, self._outputs = None, {}, []

    def input_metadata_impl(self) -> dict[str, tuple[tuple, str]]:
        """{name: (shape, dtype)}: a quantized input fed float32 by the spec reports float32 (quantized here)."""
        shape = tuple(int(d) for d in self._input.get("shape_signature", self._input["shape"]))
        dtype = np.dtype(self._input["dtype"]).name
        if dtype in QUANTIZED and self.spec.input.dtype == "float32":
            dtype = "float32"
        return {self._input["name"]: (shape, dtype)}

    def infer_impl(self, tensor: np.ndarray) -> list[np.ndarray]:
        it = self.interpreter
        it.set_tensor(self._input["index"], self._to_input(tensor))
        it.invoke()
        return [self._from_output(it.get_tensor(d["index"]), d) for d in self._outputs]

    def _to_input(self, tensor: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._input["dtype"])
        if tensor.dtype == dtype:
            return tensor
        scale, zero = _quant(self._input)
        if dtype.name in QUANTIZED and scale > 0:
            info = np.iinfo(dtype)
            q = np.round(tensor.astype(np.float32) / scale) + zero
            return np.clip(q, info.min, info.max).astype(dtype)
        return tensor.astype(dtype)

    @staticmethod
    def _from_output(out: np.ndarray, detail: dict) -> np.ndarray:
        scale, zero = _quant(detail)
        if out.dtype.name in QUANTIZED and scale > 0:
            return ((out.astype(np.float32) - zero) * scale).astype(np.float32)
        return out

    def output_names(self) -> list[str]:
        """Tensor names of the outputs, in the order ``infer`` returns them."""
        self._require_loaded("output_names")
        return [d["name"] for d in self._outputs]


QUANTIZE_OPS = ("QUANTIZE", "DEQUANTIZE")


def model_ops(model_path: str | Path, skip: str | None = None) -> list[tuple[str, str]]:
    """(op name, dtype of its data input) for every op of a .tflite file, in execution order, e.g.
    ('CONV_2D', 'int8'), ('QUANTIZE', 'float32'); the data input is the first input that is not an int32 /
    int64 shape or index tensor (TRANSPOSE_CONV lists its output shape first). Ops whose output names,
    joined by ';', match the regex ``skip`` are left out. Read without delegates."""
    it = interpreter_class()(model_path=str(model_path))
    details = it.get_tensor_details()
    dtypes = {d["index"]: np.dtype(d["dtype"]).name for d in details}
    names = {d["index"]: d["name"] for d in details}
    ops = []
    for op in it._get_ops_details():  # noqa: SLF001 — the interpreter's only op listing
        if skip and re.search(skip, ";".join(names.get(i, "") for i in op["outputs"])):
            continue
        inputs = [dtypes[i] for i in op["inputs"] if i in dtypes]
        data = next((d for d in inputs if d not in ("int32", "int64")), inputs[0] if inputs else "none")
        ops.append((op["op_name"], data))
    return ops


def quantized_share(ops: list[tuple[str, str]]) -> float:
    """Share of compute ops (QUANTIZE / DEQUANTIZE not counted) whose input is int8 / uint8 / int16."""
    compute = [dtype for op, dtype in ops if op not in QUANTIZE_OPS]
    if not compute:
        return 0.0
    return sum(dtype in ("int8", "uint8", "int16") for dtype in compute) / len(compute)


def model_order(names: list[str]) -> list[int]:
    """Positions that sort litert-torch output names (``..._output_<i>_output``) by ``i``, numerically;
    identity when a name does not follow that pattern."""
    found = [_OUTPUT_INDEX.search(n) for n in names]
    if not all(found):
        return list(range(len(names)))
    return sorted(range(len(names)), key=lambda j: int(found[j].group(1)))
