"""ONNX target: the exported graph itself, run by ONNX Runtime (or OpenVINO / TensorRT reading ONNX)."""

from __future__ import annotations

import shutil

from edgepose.export.targets.base import ExportContext, Target


class OnnxTarget(Target):
    name = "onnx"
    backend = "onnxruntime"
    package = "onnxruntime"
    precisions = ("fp32",)

    def build(self, ctx: ExportContext) -> dict:
        shutil.copyfile(ctx.onnx.path, ctx.dir / "model.onnx")
        return {"model_file": "model.onnx"}
