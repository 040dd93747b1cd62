"""Builds of one target for the default models, shared by the per-target quantization tests.

Bundles are built with the target directly (``TARGET.build(ctx)`` + manifest), not through the accuracy gate,
from a calibration set of real COCO person crops / images (../shared/data/coco-mini) and the default trained
weights; each (target, model) keeps one workspace, so later builds reuse what the first one cached.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COCO = REPO.parent / "shared" / "data" / "coco-mini"
MODELS = ("simplebaseline-mnv2s-edge", "centernet-mnv2s")


class TargetBuilds:
    """Model, spec, calibration set (and the exported ONNX, for targets built from it) of one default model."""

    def __init__(self, target: str, name: str, root: Path):
        from edgepose.calibration import CalibrationSet
        from edgepose.export.api import _spec_for
        from edgepose.export.onnx import export_onnx
        from edgepose.export.targets import get_target
        from edgepose.models import create

        self.target = get_target(target)
        self.model = create(name, weights="default").eval()
        # TFLite decodes in the graph by default (a float decoder); these builds test the model's own quantization
        self.spec = _spec_for(self.model, self.target, "host" if target == "tflite" else "auto")
        self.root = root
        self.workspace = root / "ws"
        self.workspace.mkdir()
        self.onnx = (export_onnx(self.model, self.workspace / "model.onnx", decode=self.spec.decode)
                     if target in ("openvino", "onnx", "tensorrt") else None)
        self.built: dict = {}
        self.calib = CalibrationSet.from_source(COCO / "test_coco.json", self.spec, size=16, progress=False)

    def context(self, out: Path, precision: str, exclude=(), int8_modules=(), **options):
        from edgepose.export.targets.base import ExportContext

        out.mkdir(parents=True)
        return ExportContext(model=self.model, spec=self.spec, precision=precision, onnx=self.onnx, dir=out,
                             workspace=self.workspace, options=options, log=lambda *_: None,
                             calib=self.calib if precision == "int8" else None, exclude=tuple(exclude),
                             int8_modules=tuple(int8_modules))

    def build(self, tag: str, precision: str, exclude=(), int8_modules=(), **options):
        """Build into root/tag once per tag, write the manifest; returns the Bundle."""
        from edgepose.bundle import Bundle, write_manifest

        if tag not in self.built:
            ctx = self.context(self.root / tag, precision, exclude, int8_modules, **options)
            manifest = dict(self.target.build(ctx), target=self.target.name, backend=self.target.backend,
                            precision=precision, spec=self.spec.to_dict())
            self.built[tag] = Bundle(ctx.dir, write_manifest(ctx.dir, manifest))
        return self.built[tag]


_BUILDS: dict[tuple[str, str], TargetBuilds] = {}


def target_builds(target: str, name: str, tmp_path_factory) -> TargetBuilds:
    """The session's TargetBuilds of ``name`` for ``target`` (created once)."""
    if (target, name) not in _BUILDS:
        _BUILDS[target, name] = TargetBuilds(target, name, tmp_path_factory.mktemp(f"{target}-{name}"))
    return _BUILDS[target, name]
