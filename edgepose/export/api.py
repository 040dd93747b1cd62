"""``edgepose.export(model, target=..., out=...)``: the whole chain from nn.Module to a checked bundle."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgepose.errors import ConfigError, ExportError
from edgepose.export.manifest import bundle_manifest, source_hash  # noqa: F401  (source_hash: public here too)
from edgepose.export.options import (
    FLAT_KEYWORDS,
    DecodePlace,
    ParityOptions,
    Precision,
    QuantOptions,
    resolve_options,
)
from edgepose.utils.timing import step


def attach_meta(model, *, head: str | None, keypoints: str | None, input_size, mean, std, name: str | None,
                output=None):
    """Give a foreign nn.Module the ModelMeta export needs ("bring your own model"): its outputs, layout and stride
    are read from a dry run (:mod:`edgepose.export.byo`); ``output`` (index or dict key) picks the map of a model
    with several outputs (default: the only one that fits ``head``). → the module, or an adapter around it that
    returns (N, K, H, W) maps."""
    from edgepose.export.byo import ByoAdapter, probe
    from edgepose.heads import byo_kinds, get_head
    from edgepose.keypoints import get_schema
    from edgepose.models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelMeta

    if getattr(model, "edgepose_meta", None) is not None:
        if output is not None:
            raise ConfigError(f"output={output!r} given with {model.edgepose_meta.name}, which carries its own "
                              "edgepose_meta; expected output= only for your own nn.Module")
        return model
    if head not in byo_kinds() or input_size is None:
        raise ConfigError(f"a model without edgepose_meta needs head={'|'.join(byo_kinds())}, keypoints=... and "
                          f"input_size=(w, h); got head={head!r}, input_size={input_size!r}")
    schema = get_schema(keypoints or "coco")
    w, h = (int(v) for v in input_size)
    found = probe(model, get_head(head), schema.num_keypoints, (w, h), output=output, schema=schema.name)
    codec = get_head(head).byo_codec((w, h), schema.num_keypoints, found.feature_size)
    name = name or type(model).__name__
    model = ByoAdapter(model, found) if found.needs_adapter else model
    model.edgepose_byo = found.to_dict()
    model.edgepose_meta = ModelMeta(name=name, kind=head, input_size=(w, h),
                                    keypoints=schema.name, mean=tuple(mean or IMAGENET_MEAN),
                                    std=tuple(std or IMAGENET_STD), codec=codec, config={})
    return model


def export(model, *, target: str = "onnx", out: str | Path, precision: Precision | str = Precision.FP32,
           decode: DecodePlace | str = DecodePlace.AUTO, quant: QuantOptions | None = None,
           parity: ParityOptions | bool | None = None, opset: int = 17, dynamic_batch: bool = False,
           samples: str | Path | None = None, log=print, head: str | None = None, keypoints: str | None = None,
           input_size=None, mean=None, std=None, name: str | None = None, output: int | str | None = None,
           **options: Any):
    """Export ``model`` to one target (a Bundle) or to ``target='all'`` (a dict target → Bundle, in out/<target>).

    ``precision`` (:class:`~edgepose.export.options.Precision` or its string) and ``decode``
    (:class:`~edgepose.export.options.DecodePlace`: in the graph, on the host, or auto) choose what is built;
    ``quant`` (:class:`~edgepose.export.options.QuantOptions`) holds the calibration data and accuracy gate of a
    non-fp32 export, ``parity`` (:class:`~edgepose.export.options.ParityOptions`, or True / False) the fp32
    parity gate. Bring your own model: pass ``head``, ``keypoints``, ``input_size`` (and ``mean``/``std``) for an
    nn.Module that has no ``edgepose_meta``; its outputs (a tensor, tuple, list or dict; NCHW or NHWC; stride 1, 2,
    4 or 8) are read from a dry run, ``output`` (an index or a dict key) picking the map when there are several
    (default: the only output that fits ``head``; several fitting is a ConfigError asking for ``output``).
    ``samples`` (a COCO json or an image folder) feeds the parity gate
    and the bundle's golden samples real images. Other keywords are target options (``dla_core``, ...).

    ``precision='int8'`` needs ``quant.calib``: a :class:`~edgepose.calibration.CalibrationSet` or a source
    (image folder, video, folder of videos, COCO json, ``synthetic[:N]``, or a list of these; ``calib_size``
    samples, default 128, shared evenly across videos). Any precision other than fp32 replaces the parity gate
    by the accuracy gate: OKS AP on ``quant.val`` (else held-out calibration images, else synthetic-val) must
    not drop more than ``max_ap_drop`` AP points below the fp32 reference, or AccuracyGateFailed is raised and
    no bundle is written (``allow_accuracy_drop=True`` writes it anyway). ``val`` naming unlabelled frames
    (image folder, video, folder of videos, or a list; ``val_size`` frames, default 100) runs the label-free
    gate against the fp32 model's own predictions (:mod:`edgepose.calibration.label_free`).
    ``auto_mixed=True`` keeps the layers INT8 hurts most in float until the gate passes.

    The flat keywords of earlier versions (``calib=``, ``calib_size=``, ``calib_method=``, ``val=``,
    ``val_size=``, ``max_ap_drop=``, ``auto_mixed=``, ``allow_accuracy_drop=``, ``rel_tol=``, ``px_tol=``) are
    still accepted and folded into ``quant`` / ``parity``; next to the option object they belong in they are a
    ConfigError.
    """
    from edgepose.export.targets import TARGETS, get_target

    flat = {k: options.pop(k) for k in list(options) if k in FLAT_KEYWORDS}
    quant, parity = resolve_options(quant, parity, flat)
    precision = Precision.coerce(precision, "precision").value
    decode = DecodePlace.coerce(decode, "decode").value
    log = log or (lambda *_: None)
    model = attach_meta(model, head=head, keypoints=keypoints, input_size=input_size, mean=mean, std=std, name=name,
                        output=output)
    if target == "all":
        targets = [t for t in TARGETS if precision in TARGETS[t].precisions]
        skipped = [t for t in TARGETS if t not in targets]
        if skipped:
            log(f"--target all: {', '.join(skipped)} skipped (no {precision} there)")
    else:
        targets = [target]
    for t in targets:
        get_target(t).check_precision(precision)
    quant = _checked_quant(model, precision, quant, log)
    common = dict(precision=precision, decode=decode, opset=opset, dynamic_batch=dynamic_batch, samples=samples,
                  parity=parity, log=log, options=options, quant=quant)
    if target == "all":
        return {t: _export_one(model, get_target(t), out=Path(out) / t, **common) for t in targets}
    return _export_one(model, get_target(target), out=Path(out), **common)


def _checked_quant(model, precision: str, quant: QuantOptions, log) -> QuantOptions:
    """``quant`` with its calibration source built into a CalibrationSet (int8 only) and its val checked: a bad
    ``val`` fails before the build, not after it."""
    val = quant.val
    if quant.calib is not None and precision != "int8":
        log(f"calibration data ignored: precision {precision} needs none (only int8 is calibrated)")
    if precision != "fp32":
        from edgepose.calibration.label_free import check_val

        if check_val(val, quant.val_size) == "labelled":
            val = str(val[0]) if isinstance(val, (list, tuple)) else val
    _int8_modules(model, precision, quant)  # a bad module name fails before calibration
    if quant.int8_modules is not None and precision != "int8":
        log(f"int8_modules ignored: precision {precision} quantizes no module")
    calib = _calibration_set(model, precision, quant.calib if precision == "int8" else None, quant.calib_size)
    return replace(quant, calib=calib, val=val)


def _calibration_set(model, precision: str, calib, size: int | None):
    """The CalibrationSet for an int8 export (None otherwise); ConfigError before any work when missing."""
    from edgepose.calibration.dataset import CalibrationSet

    if calib is None:
        if precision == "int8":
            raise ConfigError("precision 'int8' needs calibration data: pass calib=SOURCE (--calib SOURCE: an image "
                              "folder, a video, a folder of videos, a COCO json or synthetic[:N], or several)")
        return None
    if isinstance(calib, CalibrationSet):
        return calib.subset(size) if size and int(size) < len(calib) else calib
    return calibration_set(model, calib, size)


def calibration_set(model, calib, size: int | None = None):
    """The CalibrationSet an INT8 export of ``model`` reads from ``calib`` (sources as for ``export(calib=...)``):
    build it once and pass it as ``calib=`` to export one model to several targets without reading the frames (and,
    for a top-down model, finding the people in them) again for each."""
    from edgepose.calibration.dataset import CalibrationSet
    from edgepose.runtimes.spec import ModelSpec

    spec = ModelSpec.from_meta(model.edgepose_meta)
    if spec.bottom_up:
        return CalibrationSet.from_source(calib, spec, size=size)
    from edgepose.calibration.label_free import person_box
    from edgepose.runtimes.torch import TorchRuntime

    # top-down frames without boxes (videos, image folders): crop the person the float model itself finds there,
    # as the label-free gate does, so INT8 ranges come from person crops and not from whole frames squeezed small
    with TorchRuntime(model, spec) as reference:
        return CalibrationSet.from_source(calib, spec, size=size, person_box=lambda image: person_box(reference, image))


def _spec_for(model, tgt, decode: str, precision: str = "fp32"):
    from edgepose.runtimes.spec import ModelSpec

    meta = model.edgepose_meta
    place = tgt.resolve_decode(decode, meta.kind, meta.codec, precision)
    spec = ModelSpec.from_meta(meta, decode=place)  # the in-graph decoder runs the codec's own method
    spec.input.layout = tgt.layout
    return spec


def _export_one(model, tgt, *, out: Path, precision: str, decode: str, opset, dynamic_batch, samples,
                parity: ParityOptions, log, options, quant: QuantOptions):
    from edgepose.bundle import Bundle, bundle_writer, write_manifest
    from edgepose.export.onnx import export_onnx
    from edgepose.export.targets.base import ExportContext
    from edgepose.utils.signals import remove_on_terminate

    model.eval()
    spec = _spec_for(model, tgt, decode, precision)
    with tempfile.TemporaryDirectory(prefix="edgepose-export-") as ws, remove_on_terminate(ws), \
            bundle_writer(out) as tmp:
        ws = Path(ws)
        ctx = ExportContext(model=model, spec=spec, precision=precision, onnx=None, dir=tmp, workspace=ws,
                            options=dict(options, opset=opset, dynamic_batch=dynamic_batch), log=log,
                            calib=quant.calib if precision == "int8" else None, method=quant.method.value,
                            int8_modules=_int8_modules(model, precision, quant))
        if precision != "fp32":
            from edgepose.export.gated import gated_build

            with step(f"{tgt.name}: torch → ONNX (opset {opset}, decode={spec.decode})", log):
                ctx.onnx = export_onnx(model, ws / "model.onnx", decode=spec.decode, opset=opset,
                                       batch=None if dynamic_batch else 1)
            extra = gated_build(model, tgt, ctx, quant)
            manifest = write_manifest(tmp, bundle_manifest(model, tgt, ctx, extra))
        else:
            extra, manifest = _fp32_build(model, tgt, ctx, samples, parity)
        with step(f"{tgt.name}: golden samples for `edgepose verify`", log):
            manifest["golden"] = golden_samples(tgt, Bundle(tmp, manifest), samples)
        manifest = write_manifest(tmp, manifest)
    log(f"{tgt.name}: bundle written to {out}" + (f" — {extra['note']}" if extra.get("note") else ""))
    return Bundle(out, manifest)


def _int8_modules(model, precision: str, quant: QuantOptions) -> tuple[str, ...]:
    from edgepose.export.int8_scope import resolve_int8_modules

    return resolve_int8_modules(model, quant.int8_modules) if precision == "int8" else ()


def _fp32_build(model, tgt, ctx, samples, parity: ParityOptions) -> tuple[dict, dict]:
    """Export, build and parity-check an fp32 bundle in ``ctx.dir`` → (the build's extra, the manifest). A
    bring-your-own model whose traced graph raises, fails to build or fails parity is exported once more with the
    dynamo exporter (``torch.export``); when that fails too, the refusal names both attempts."""
    import shutil

    from edgepose.bundle import Bundle, write_manifest
    from edgepose.export.onnx import export_onnx

    exporters = ("torchscript", "dynamo") if getattr(model, "edgepose_byo", None) else ("torchscript",)
    opset, log, failed = ctx.options["opset"], ctx.log, []
    for exporter in exporters:
        for p in ctx.dir.iterdir():  # what a failed attempt left
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
        folder = ctx.workspace if exporter == "torchscript" else ctx.workspace / exporter
        folder.mkdir(exist_ok=True)
        try:
            how = "" if len(exporters) == 1 else f"{exporter}, "
            shown = opset if exporter == "torchscript" else max(opset, 18)
            with step(f"{tgt.name}: torch → ONNX ({how}opset {shown}, decode={ctx.spec.decode})", log):
                ctx.onnx = export_onnx(model, folder / "model.onnx", decode=ctx.spec.decode, opset=opset,
                                       batch=None if ctx.options["dynamic_batch"] else 1, exporter=exporter)
            with step(f"{tgt.name}: build fp32 model", log):
                extra = tgt.build(ctx)
            manifest = write_manifest(ctx.dir, bundle_manifest(model, tgt, ctx, extra))
            if parity.enabled:
                manifest["parity"] = _parity_gate(model, tgt, Bundle(ctx.dir, manifest), ctx.spec, samples, parity,
                                                  log)
                manifest = write_manifest(ctx.dir, manifest)
            return extra, manifest
        except ExportError as exc:
            if len(exporters) == 1:
                raise
            failed.append(f"{exporter} exporter: {exc}")
            if exporter != exporters[-1]:
                log(f"{tgt.name}: the {exporter} graph failed ({exc}); trying the {exporters[-1]} exporter")
    raise ExportError(f"{tgt.name}: bundle not written, both ONNX exporters failed — " + "; ".join(failed))


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
    from edgepose.backends import backends_for_target

    rt = tgt.parity_runtime(bundle)
    if rt is not None:
        return rt
    for backend in backends_for_target(tgt.name):
        if backend.name != tgt.backend and backend.is_available():
            return backend.runtime_class().from_bundle(bundle).load()
    return None


def _parity_gate(model, tgt, bundle, spec, samples, parity: ParityOptions, log) -> dict:
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
        report = check_parity(reference, candidate, batches, rel_tol=parity.rel_tol, px_tol=parity.px_tol,
                              heatmap_reference=raw)
    log(f"{tgt.name}: parity {'passed' if report.passed else 'FAILED'}: {report.summary()}")
    if not report.passed:
        raise ExportError(f"{tgt.name} parity gate failed, bundle not written: {report.summary()}")
    return report.to_dict()
