"""``edgepose.export(model, target=..., out=...)``: the whole chain from nn.Module to a checked bundle."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.errors import ConfigError, ExportError
from edgepose.utils.timing import step


def source_hash(model) -> str:
    """sha256 over the model's state_dict (names, shapes and bytes), independent of file format."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def attach_meta(model, *, head: str | None, keypoints: str | None, input_size, mean, std, name: str | None):
    """Give a foreign nn.Module the ModelMeta export needs ("bring your own model")."""
    from edgepose.heads import byo_kinds, get_head
    from edgepose.keypoints import get_schema
    from edgepose.models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelMeta

    if getattr(model, "edgepose_meta", None) is not None:
        return model
    if head not in byo_kinds() or input_size is None:
        raise ConfigError(f"a model without edgepose_meta needs head={'|'.join(byo_kinds())}, keypoints=... and "
                          f"input_size=(w, h); got head={head!r}, input_size={input_size!r}")
    schema = get_schema(keypoints or "coco")
    w, h = (int(v) for v in input_size)
    codec = get_head(head).byo_codec((w, h), schema.num_keypoints)
    model.edgepose_meta = ModelMeta(name=name or type(model).__name__, kind=head, input_size=(w, h),
                                    keypoints=schema.name, mean=tuple(mean or IMAGENET_MEAN),
                                    std=tuple(std or IMAGENET_STD), codec=codec, config={})
    return model


@dataclass
class QuantOptions:
    """Calibration and accuracy-gate knobs of a non-fp32 export (see :func:`export`)."""

    calib: Any = None  # CalibrationSet (built from the ``calib`` source by export)
    method: str = "minmax"
    val: Any = None  # labelled data (str) or unlabelled frames (str / Path or a list: the label-free gate)
    val_size: int | None = None  # frames of unlabelled val (None: label_free.DEFAULT_FRAMES)
    max_ap_drop: float = 1.0
    auto_mixed: bool = False
    allow_accuracy_drop: bool = False
    sensitivity_samples: int = 8


def export(model, *, target: str = "onnx", out: str | Path, precision: str = "fp32", decode: str = "auto",
           opset: int = 17, dynamic_batch: bool = False, samples: str | Path | None = None,
           parity: bool = True, rel_tol: float = 1e-4, px_tol: float = 0.1, log=print,
           head: str | None = None, keypoints: str | None = None, input_size=None, mean=None, std=None,
           name: str | None = None, calib=None, calib_size: int | None = None, calib_method: str = "minmax",
           val=None, val_size: int | None = None, max_ap_drop: float = 1.0, auto_mixed: bool = False,
           allow_accuracy_drop: bool = False, **options: Any):
    """Export ``model`` to one target (a Bundle) or to ``target='all'`` (a dict target → Bundle, in out/<target>).

    Bring your own model: pass ``head``, ``keypoints``, ``input_size`` (and ``mean``/``std``) for an nn.Module
    that has no ``edgepose_meta``. ``samples`` (a COCO json or an image folder) feeds the parity gate real images.

    ``precision='int8'`` needs ``calib``: a :class:`~edgepose.calibration.CalibrationSet` or a source (image
    folder, video, folder of videos, COCO json, ``synthetic[:N]``, or a list of these; ``calib_size`` samples,
    default 128, shared evenly across videos). Any precision other than fp32 replaces the parity gate by the
    accuracy gate: OKS AP on ``val`` (else held-out calibration images, else synthetic-val) must not drop more
    than ``max_ap_drop`` AP points below the fp32 reference, or AccuracyGateFailed is raised and no bundle is
    written (``allow_accuracy_drop=True`` writes it anyway). ``val`` naming unlabelled frames (image folder,
    video, folder of videos, or a list; ``val_size`` frames, default 100) runs the label-free gate against the
    fp32 model's own predictions (:mod:`edgepose.calibration.label_free`).
    ``auto_mixed=True`` keeps the layers INT8 hurts most in float until the gate passes.
    """
    from edgepose.export.targets import TARGETS, get_target

    log = log or (lambda *_: None)
    model = attach_meta(model, head=head, keypoints=keypoints, input_size=input_size, mean=mean, std=std, name=name)
    if target == "all":
        targets = [t for t in TARGETS if precision in TARGETS[t].precisions]
        skipped = [t for t in TARGETS if t not in targets]
        if skipped:
            log(f"--target all: {', '.join(skipped)} skipped (no {precision} there)")
    else:
        targets = [target]
    for t in targets:
        get_target(t).check_precision(precision)
    if calib is not None and precision != "int8":
        log(f"calibration data ignored: precision {precision} needs none (only int8 is calibrated)")
        calib = None
    if precision != "fp32":
        from edgepose.calibration.label_free import check_val

        if check_val(val, val_size) == "labelled":  # a bad --val fails before the build, not after it
            val = str(val[0]) if isinstance(val, (list, tuple)) else val
    quant = QuantOptions(calib=_calibration_set(model, precision, calib, calib_size), method=calib_method,
                         val=val, val_size=val_size, max_ap_drop=float(max_ap_drop), auto_mixed=auto_mixed,
                         allow_accuracy_drop=allow_accuracy_drop)
    common = dict(precision=precision, decode=decode, opset=opset, dynamic_batch=dynamic_batch, samples=samples,
                  parity=parity, rel_tol=rel_tol, px_tol=px_tol, log=log, options=options, quant=quant)
    if target == "all":
        return {t: _export_one(model, get_target(t), out=Path(out) / t, **common) for t in targets}
    return _export_one(model, get_target(target), out=Path(out), **common)


def _calibration_set(model, precision: str, calib, size: int | None):
    """The CalibrationSet for an int8 export (None otherwise); ConfigError before any work when missing."""
    from edgepose.calibration.dataset import CalibrationSet
    from edgepose.runtimes.spec import ModelSpec

    if calib is None:
        if precision == "int8":
            raise ConfigError("precision 'int8' needs calibration data: pass calib=SOURCE (--calib SOURCE: an image "
                              "folder, a video, a folder of videos, a COCO json or synthetic[:N], or several)")
        return None
    if isinstance(calib, CalibrationSet):
        return calib.subset(size) if size else calib
    return CalibrationSet.from_source(calib, ModelSpec.from_meta(model.edgepose_meta), size=size)


def _spec_for(model, tgt, decode: str, precision: str = "fp32"):
    from edgepose.runtimes.spec import ModelSpec

    meta = model.edgepose_meta
    place = tgt.resolve_decode(decode, meta.kind, meta.codec, precision)
    spec = ModelSpec.from_meta(meta, decode=place)  # the in-graph decoder runs the codec's own method
    spec.input.layout = tgt.layout
    return spec


def _export_one(model, tgt, *, out: Path, precision, decode, opset, dynamic_batch, samples, parity, rel_tol,
                px_tol, log, options, quant: QuantOptions):
    from edgepose.bundle import Bundle, bundle_writer, write_manifest
    from edgepose.export.onnx import export_onnx
    from edgepose.export.targets.base import ExportContext
    from edgepose.utils.signals import remove_on_terminate

    model.eval()
    spec = _spec_for(model, tgt, decode, precision)
    with tempfile.TemporaryDirectory(prefix="edgepose-export-") as ws, remove_on_terminate(ws), \
            bundle_writer(out) as tmp:
        ws = Path(ws)
        with step(f"{tgt.name}: torch → ONNX (opset {opset}, decode={spec.decode})", log):
            onnx_exp = export_onnx(model, ws / "model.onnx", decode=spec.decode, opset=opset,
                                   batch=None if dynamic_batch else 1)
        ctx = ExportContext(model=model, spec=spec, precision=precision, onnx=onnx_exp, dir=tmp, workspace=ws,
                            options=dict(options, opset=opset, dynamic_batch=dynamic_batch), log=log,
                            calib=quant.calib if precision == "int8" else None, method=quant.method)
        if precision != "fp32":
            from edgepose.calibration.quantize import quantized_build

            extra = quantized_build(model, tgt, ctx, quant, lambda e: _manifest(model, tgt, ctx, e))
            manifest = write_manifest(tmp, _manifest(model, tgt, ctx, extra))
        else:
            with step(f"{tgt.name}: build {precision} model", log):
                extra = tgt.build(ctx)
            manifest = write_manifest(tmp, _manifest(model, tgt, ctx, extra))
            if parity:
                manifest["parity"] = _parity_gate(model, tgt, Bundle(tmp, manifest), spec, samples, rel_tol, px_tol,
                                                  log)
                manifest = write_manifest(tmp, manifest)
        with step(f"{tgt.name}: golden samples for `edgepose verify`", log):
            manifest["golden"] = golden_samples(tgt, Bundle(tmp, manifest), samples)
        manifest = write_manifest(tmp, manifest)
    log(f"{tgt.name}: bundle written to {out}" + (f" — {extra['note']}" if extra.get("note") else ""))
    return Bundle(out, manifest)


def golden_samples(tgt, bundle, samples) -> dict:
    """Record ``bundle``'s golden samples (:mod:`edgepose.golden`) with a runtime over its files; → the manifest's
    ``golden`` entry (``{"skipped": why}`` when no backend here runs the bundle)."""
    from edgepose import golden
    from edgepose.export.samples import sample_images

    rt = _golden_runtime(tgt, bundle)
    if rt is None:
        return {"skipped": f"no backend on the exporting machine runs a {tgt.name} bundle"}
    with rt:
        arrays, entry = golden.record(rt, sample_images(bundle.spec(), source=samples), precision=bundle.manifest[
            "precision"])
    return golden.write(bundle.path, arrays, entry)


def _golden_runtime(tgt, bundle):
    """The gates' runtime for the bundle; for a target whose backend is not here (TensorRT), another backend
    that runs its files (ONNX Runtime on the engine's ONNX)."""
    from edgepose.runtimes.registry import backends_for_target

    rt = tgt.parity_runtime(bundle)
    if rt is not None:
        return rt
    for backend in backends_for_target(tgt.name):
        if backend.name != tgt.backend and backend.is_available():
            return backend.runtime_class().from_bundle(bundle).load()
    return None


def _manifest(model, tgt, ctx, extra: dict) -> dict:
    """The bundle manifest (without file hashes) for ``extra`` = the target's build result."""
    meta, onnx_exp = model.edgepose_meta, ctx.onnx
    manifest = {
        "target": tgt.name, "backend": tgt.backend, "backend_version": tgt.backend_version(),
        "precision": ctx.precision, "spec": ctx.spec.to_dict(),
        "model": {"name": meta.name, "config": dict(meta.config, checkpoint_info=None),
                  "source_sha256": source_hash(model)},
        "export": {"opset": onnx_exp.opset, "decode": ctx.spec.decode, "batch": onnx_exp.batch,
                   "folded_convtranspose_bn": onnx_exp.folded_bn, "notes": onnx_exp.notes},
        "quantization": None, **extra,
    }
    manifest["model"]["config"].pop("checkpoint_info", None)
    if ctx.options.get("device_profile"):  # export --device: what the bundle is for, and its thread count
        manifest["device_profile"] = dict(ctx.options["device_profile"])
    return manifest


def _parity_gate(model, tgt, bundle, spec, samples, rel_tol, px_tol, log) -> dict:
    from edgepose.export.onnx import wrap_for_export
    from edgepose.export.parity import check_parity
    from edgepose.export.samples import sample_inputs
    from edgepose.runtimes.spec import ModelSpec
    from edgepose.runtimes.torch import TorchRuntime

    candidate = tgt.parity_runtime(bundle)
    if candidate is None:
        log(f"{tgt.name}: parity gate skipped — backend {tgt.backend!r} cannot run on this machine")
        return {"skipped": f"backend {tgt.backend} not available where the bundle was exported"}
    ref_spec = ModelSpec.from_dict(spec.to_dict())
    ref_spec.input.layout = "NCHW"
    with step(f"{tgt.name}: parity gate vs PyTorch", log), candidate:
        reference = TorchRuntime(wrap_for_export(model, spec.decode), ref_spec).load()
        batches = sample_inputs(ref_spec, source=samples)
        raw = None
        if ref_spec.head.argmax_decode:  # raw outputs: the reference itself when it decodes on the host
            raw = reference if spec.decode == "host" else TorchRuntime(model, ref_spec).load()
        report = check_parity(reference, candidate, batches, rel_tol=rel_tol, px_tol=px_tol, heatmap_reference=raw)
    log(f"{tgt.name}: parity {'passed' if report.passed else 'FAILED'}: {report.summary()}")
    if not report.passed:
        raise ExportError(f"{tgt.name} parity gate failed, bundle not written: {report.summary()}")
    return report.to_dict()
