"""The per-target export interface: ``TARGETS[name].build(ctx)`` — no flag-driven dispatcher."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepose.errors import ConfigError


@dataclass
class ExportContext:
    """Everything a target needs to write its files into ``dir`` (the temporary bundle directory)."""

    model: Any  # the nn.Module with edgepose_meta (not wrapped)
    spec: Any  # ModelSpec of the bundle being written (decode resolved)
    precision: str
    onnx: Any  # OnnxExport in the workspace (fp32, decode as in spec)
    dir: Path
    workspace: Path
    options: dict = field(default_factory=dict)
    log: Any = print
    calib: Any = None  # edgepose.calibration.CalibrationSet for precision "int8" (None otherwise)
    exclude: tuple[str, ...] = ()  # layer names to keep in float (sensitivity-driven mixed precision)
    method: str = "minmax"  # calibration method where the target offers a choice
    int8_modules: tuple[str, ...] = ()  # PyTorch modules INT8 covers, the rest float; () = all (int8_scope)


class Target:
    """One deployment target. Subclasses set ``name`` (and ``layout``) and implement ``build``; the backend, the
    manifest's package and the precisions come from the target's entry in :mod:`edgepose.backends`."""

    name = ""
    layout = "NCHW"

    @property
    def backend(self) -> str:
        """The runtime backend that runs the bundle by default (the registry's backend for this target)."""
        return self.descriptor().name

    @property
    def package(self) -> str:
        """The distribution whose version goes into the manifest."""
        return self.descriptor().package

    @property
    def precisions(self) -> tuple[str, ...]:
        return self.descriptor().precisions

    def descriptor(self):
        """This target's :class:`~edgepose.backends.Backend`."""
        from edgepose.backends import native_backend

        found = native_backend(self.name)
        if found is None:
            raise ConfigError(f"target {self.name!r} has no backend in edgepose.backends")
        return found

    def resolve_decode(self, decode: str, kind: str, codec: dict, precision: str = "fp32") -> str:
        """'auto' → 'graph': every codec (heatmap argmax / DARK / UDP, CenterNet) has an in-graph decoder
        (``edgepose.codecs.graph``) with the host decode's math. Targets where a graph decode costs more
        than it saves (TFLite), or cannot keep it in f32 at a reduced precision (OpenVINO fp16), override
        this."""
        if decode in ("graph", "host"):
            return decode
        if decode != "auto":
            raise ConfigError(f"decode must be graph, host or auto, got {decode!r}")
        return "graph"

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise ConfigError(f"target {self.name!r} supports precision {', '.join(self.precisions)}; "
                              f"got {precision!r}")

    def backend_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def build(self, ctx: ExportContext) -> dict:
        """Write model file(s) into ctx.dir; return manifest entries (at least 'model_file')."""
        raise NotImplementedError

    def quantizable_layers(self, ctx: ExportContext) -> list[str]:
        """Names usable in ``ctx.exclude`` (layers the quantizer would make INT8), in graph order.

        Default: the ONNX node names of Conv / ConvTranspose / Gemm / MatMul in ``ctx.onnx``; targets whose
        tool names layers differently override this.
        """
        from edgepose.calibration.layers import onnx_quantizable_nodes

        return onnx_quantizable_nodes(ctx.onnx.path)

    def parity_runtime(self, bundle) -> Any | None:
        """A loaded runtime over the files just written, for the parity gate (None: cannot run here)."""
        backend = self.descriptor()
        if not backend.is_available():
            return None
        return backend.runtime_class().from_bundle(bundle, **self.parity_options()).load()

    def parity_options(self) -> dict:
        return {}
