"""ONNX Runtime backend: CPU provider by default, CUDA / TensorRT execution providers when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.errors import BundleError, ConfigError
from edgepose.runtimes.base import Runtime
from edgepose.runtimes.spec import ModelSpec
from edgepose.utils.lazy import is_importable, require
from edgepose.utils.options import check_threads

OPT_LEVELS = ("disable", "basic", "extended", "all")
# ONNX Runtime's WeightBiasQuantization (graph level basic) gives a Conv / ConvTranspose / Gemm with float weights
# that sits between a DequantizeLinear and a QuantizeLinear a per-tensor int8 copy of its weights at session load:
# a layer an INT8 export keeps float on purpose inside a quantized region (``--auto-mixed``, ``exclude``) would run
# INT8 after all, per tensor. On movenet-heatmap-edge, keeping the trunk's first depthwise conv float that way moved
# the median joint 34 px from fp32 instead of 0.6 (docs/benchmarks.md). Unknown names are ignored by ORT.
DISABLED_OPTIMIZERS = ("WeightBiasQuantization",)


def is_available() -> bool:
    return is_importable("onnxruntime")


class OnnxRuntime(Runtime):
    backend = "onnxruntime"

    def __init__(self, model_path: str | Path, spec: ModelSpec, *, threads: int | None = None,
                 providers: list[str] | None = None, optimization: str = "all"):
        super().__init__(spec)
        if optimization not in OPT_LEVELS:
            raise ConfigError(f"optimization must be one of {OPT_LEVELS}, got {optimization!r}")
        self.model_path, self.threads, self.optimization = Path(model_path), check_threads(threads), optimization
        self.providers = providers
        self.session = None

    @classmethod
    def from_bundle(cls, bundle, **options) -> OnnxRuntime:
        path = bundle.model_path
        if bundle.target == "tensorrt":
            path = bundle.path / bundle.manifest.get("onnx_file", bundle.manifest["model_file"])
        return cls(path, bundle.spec(), **options)

    def load_impl(self) -> None:
        require("onnxruntime", "the onnxruntime backend")  # a missing backend is its own error, not a bad bundle
        try:
            self.session = open_session(self.model_path, self.threads, self.optimization, self.providers)
            self._input_name = self.session.get_inputs()[0].name
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise BundleError(f"onnxruntime cannot load {self.model_path}: {str(exc).splitlines()[0][:200]}") from None

    def close_impl(self) -> None:
        self.session = None

    def input_metadata_impl(self) -> dict[str, tuple[tuple, str]]:
        i = self.session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) else -1 for d in i.shape)
        dtype = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8",
                 "tensor(float16)": "float16"}.get(i.type, i.type)
        return {i.name: (shape, dtype)}

    def infer_impl(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self._input_name: tensor})


def open_session(path, threads: int | None = None, optimization: str = "all", providers: list[str] | None = None):
    """The ``onnxruntime.InferenceSession`` of ``path`` as the runtime opens it (threads, optimization level,
    providers: CUDA when present, then CPU; ``DISABLED_OPTIMIZERS`` off)."""
    ort = require("onnxruntime", "the onnxruntime backend")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
    available = ort.get_available_providers()
    providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(path), so, providers=providers, disabled_optimizers=list(DISABLED_OPTIMIZERS))
