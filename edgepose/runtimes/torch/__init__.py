"""PyTorch eager runtime: the reference that export parity checks and evaluation compare against."""

from __future__ import annotations

import numpy as np

from edgepose.runtimes.base import Runtime
from edgepose.runtimes.spec import ModelSpec
from edgepose.utils.lazy import is_importable
from edgepose.utils.options import check_threads


def is_available() -> bool:
    return is_importable("torch")


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, model, spec: ModelSpec | None = None, *, threads: int | None = None):
        super().__init__(spec or ModelSpec.from_meta(model.edgepose_meta))
        self.model, self.threads = model, check_threads(threads)

    def load_impl(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        self.model.eval()

    def input_metadata_impl(self) -> dict[str, tuple[tuple, str]]:
        w, h = self.spec.input.size
        shape = (-1, 3, h, w) if self.spec.input.layout == "NCHW" else (-1, h, w, 3)
        return {"input": (shape, "float32")}

    def infer_impl(self, tensor: np.ndarray) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model(torch.from_numpy(tensor))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.numpy() for o in outs]
