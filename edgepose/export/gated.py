"""The gated build of a non-fp32 export: build → accuracy gate → (sensitivity-driven mixed precision) → files.

Called by :func:`edgepose.export.api.export` for precision int8 / fp16. Every candidate is built by the
target into a scratch folder of the export workspace (``ctx.exclude`` = layers kept in float) with its own
manifest; the one that passes (or the all-INT8 one when the user allows an accuracy drop) is copied into the
bundle directory. Export drives the build; :mod:`edgepose.calibration` supplies the parts (accuracy gates,
sensitivity search, calibration data) and never calls back into export.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import replace
from pathlib import Path

from edgepose.errors import AccuracyGateFailed
from edgepose.export.manifest import bundle_manifest, model_entry
from edgepose.export.options import QuantOptions
from edgepose.utils.timing import step


def reference_runtime(model, ctx, log=None):
    """(loaded fp32 reference, description), same decode placement as the bundle, NCHW input.

    The fp32 ONNX of this export on ONNX Runtime when it reproduces PyTorch on the parity samples (rel.
    error <= 1e-4: the same numbers, many times faster than eager PyTorch on small CPUs), else PyTorch.
    """
    from edgepose.export.onnx import wrap_for_export
    from edgepose.export.parity import check_parity
    from edgepose.export.samples import sample_inputs
    from edgepose.runtimes.onnxruntime import OnnxRuntime, is_available
    from edgepose.runtimes.spec import ModelSpec
    from edgepose.runtimes.torch import TorchRuntime

    spec = ModelSpec.from_dict(ctx.spec.to_dict())
    spec.input.layout = "NCHW"
    torch_ref = TorchRuntime(wrap_for_export(model, spec.decode), spec).load()
    if not is_available():
        return torch_ref, "PyTorch eager fp32"
    onnx_ref = OnnxRuntime(ctx.onnx.path, spec).load()
    report = check_parity(torch_ref, onnx_ref, sample_inputs(spec), rel_tol=1e-4, px_tol=0.1)
    if report.passed:
        return onnx_ref, f"fp32 ONNX on onnxruntime (vs PyTorch: {report.summary()})"
    if log:
        log(f"accuracy gate: fp32 ONNX differs from PyTorch ({report.summary()}); using PyTorch as reference")
    return torch_ref, "PyTorch eager fp32"


def candidate_runtime(tgt, bundle):
    """(loaded runtime, label) for a just-built bundle; ONNX Runtime on the Q/DQ ONNX stands in for an INT8
    TensorRT bundle where TensorRT is missing. (None, reason) when nothing can run it here."""
    rt = tgt.parity_runtime(bundle)
    if rt is not None:
        asked, got = getattr(rt, "inference_precision", None), getattr(rt, "effective_precision", None)
        if asked not in (None, "auto") and got not in (None, asked):  # e.g. OpenVINO f16 run as bf16 on this CPU
            return rt, f"{tgt.backend} (asked {asked}, computes in {got} on this machine)"
        return rt, tgt.backend
    if bundle.target == "tensorrt" and bundle.manifest.get("precision") == "int8":
        from edgepose.runtimes.onnxruntime import OnnxRuntime, is_available

        if is_available():
            return OnnxRuntime.from_bundle(bundle).load(), "onnxruntime (stand-in for TensorRT on the Q/DQ ONNX)"
    return None, f"backend {tgt.backend} not available where the bundle was exported"


def _quiet(*_args, **_kwargs) -> None:
    """The log of scratch builds (the sensitivity loop builds dozens)."""


class _Builder:
    """Builds candidates into numbered scratch folders, each with its manifest; keeps their manifest extras."""

    def __init__(self, model, tgt, ctx):
        self.model, self.tgt, self.ctx, self.count = model, tgt, ctx, 0
        self.model_part = model_entry(model, ctx.spec)  # the same for every candidate: hash and cost once

    def __call__(self, exclude: tuple[str, ...]):
        from edgepose.bundle import Bundle, write_manifest

        self.count += 1
        folder = Path(self.ctx.workspace) / f"candidate-{self.count}"
        folder.mkdir()
        ctx = replace(self.ctx, dir=folder, exclude=tuple(exclude), log=_quiet)
        extra = self.tgt.build(ctx)
        manifest = bundle_manifest(self.model, self.tgt, ctx, extra, self.model_part)
        return Bundle(folder, write_manifest(folder, manifest)), extra


def _latency_batch(spec):
    from edgepose.export.samples import sample_inputs

    return sample_inputs(spec, n=1)[0]


def _gate_for(model, ctx, quant, log):
    from edgepose.calibration.gate import AccuracyGate, resolve_val, validation_notes
    from edgepose.calibration.label_free import is_label_free, label_free_gate

    if is_label_free(quant.val):  # unlabelled frames: the fp32 model's predictions are the ground truth
        with step("accuracy gate: fp32 reference and its pseudo-labels", log):
            ref, about = reference_runtime(model, ctx, log)
            gate = label_free_gate(ref, quant.val, workspace=ctx.workspace, size=quant.val_size,
                                   max_ap_drop=quant.max_ap_drop, calib=ctx.calib, log=log)
    else:
        coco, val_name = resolve_val(quant.val, ctx.calib, ctx.spec.kind, ctx.workspace)
        with step("accuracy gate: fp32 reference", log):
            ref, about = reference_runtime(model, ctx, log)
            gate = AccuracyGate(ref, coco, max_ap_drop=quant.max_ap_drop, val_name=val_name, log=log)
        gate.notes = validation_notes(coco, ctx.calib, 100 * gate.reference_stats["AP"], gate.num_images)
    gate.reference_about = about
    gate.reference = ref
    return gate


def gated_build(model, tgt, ctx, quant: QuantOptions) -> dict:
    """Build ``ctx.precision`` for ``tgt`` into ``ctx.dir`` behind the accuracy gate; returns manifest extras
    (incl. "accuracy"). Raises AccuracyGateFailed (nothing written) when the gate fails and the user did not
    allow it."""
    log = ctx.log or (lambda *_: None)
    build = _Builder(model, tgt, ctx)
    with step(f"{tgt.name}: build {ctx.precision} model", log):
        bundle, extra = build(ctx.exclude)
    rt, label = candidate_runtime(tgt, bundle)
    if rt is None:
        log(f"{tgt.name}: accuracy gate skipped — {label}")
        return _install(bundle, ctx, dict(extra, accuracy={"skipped": label}))
    gate = _gate_for(model, ctx, quant, log)
    with step(f"{tgt.name}: accuracy gate ({label})", log), rt:
        report = gate.check(rt, latency_batch=_latency_batch(rt.spec), label=label)
    log(f"{tgt.name}: accuracy gate {'passed' if report.passed else 'FAILED'}: {report.summary()}")
    mixed = None
    if not report.passed and quant.auto_mixed and ctx.precision == "int8":
        try:
            bundle, extra, report, mixed = _mixed_precision(model, tgt, ctx, quant, build, gate, report, log)
        except AccuracyGateFailed:
            if not quant.allow_accuracy_drop:
                raise
    if not report.passed and not quant.allow_accuracy_drop:
        raise AccuracyGateFailed(_failure(tgt, ctx, report, quant))
    if not report.passed:
        log(f"{tgt.name}: WARNING accuracy gate failed, bundle written anyway (allow_accuracy_drop)")
    notes, noise = list(gate.notes), report.noise_note()
    if noise:
        notes.append(noise)
        warnings.warn(f"accuracy gate: {noise}", stacklevel=2)
    extra = dict(extra, accuracy=dict(report.to_dict(), gate=gate.gate_kind, reference=gate.reference_about,
                                      notes=notes, overridden=not report.passed))
    if mixed is not None and isinstance(extra.get("quantization"), dict):
        extra["quantization"] = dict(extra["quantization"], kept_float=list(mixed.exclude),
                                     mixed_precision=mixed.to_dict())
    return _install(bundle, ctx, extra)


def _failure(tgt, ctx, report, quant) -> str:
    hint = ("; rerun with --auto-mixed to keep the most sensitive layers in float" if not quant.auto_mixed
            and ctx.precision == "int8" else "")
    noise = f"; {report.noise_note()}" if report.noise_note() else ""
    return (f"{tgt.name} {ctx.precision} accuracy gate failed, bundle not written: {report.summary()}{noise}{hint} "
            "(or --allow-accuracy-drop to write it anyway)")


def _install(bundle, ctx, extra: dict) -> dict:
    """Copy the chosen candidate's files (not its manifest) into the bundle directory."""
    from edgepose.bundle import MANIFEST

    for f in sorted(bundle.path.rglob("*")):
        if f.is_file() and f.name != MANIFEST:
            dst = Path(ctx.dir) / f.relative_to(bundle.path)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
    return extra


def _mixed_precision(model, tgt, ctx, quant, build, gate, first, log):
    """Sensitivity search (see :mod:`edgepose.calibration.sensitivity`); returns the passing candidate."""
    from edgepose.calibration.sensitivity import search

    subset = list(ctx.calib.subset(quant.sensitivity_samples).batches("NCHW"))
    reference = [gate.reference.infer(b) for b in subset]
    layout = ctx.spec.input.layout
    built: dict = {}

    def outputs(exclude):
        bundle, _ = build(exclude)
        rt, _ = candidate_runtime(tgt, bundle)
        with rt:
            outs = [rt.infer(b if layout == "NCHW" else b.transpose(0, 2, 3, 1).copy()) for b in subset]
        shutil.rmtree(bundle.path, ignore_errors=True)
        return outs

    def check(exclude):
        bundle, extra = build(exclude)
        rt, label = candidate_runtime(tgt, bundle)
        with rt:
            report = gate.check(rt, latency_batch=_latency_batch(rt.spec), label=label)
        built[exclude] = (bundle, extra, report)
        return report

    with step(f"{tgt.name}: sensitivity-driven mixed precision", log):
        result = search(tgt.quantizable_layers(ctx), outputs=outputs, reference=reference, gate=check,
                        first=first, log=log)
    bundle, extra, report = built[result.exclude]
    log(f"{tgt.name}: kept {len(result.exclude)} layer(s) in float: {', '.join(result.exclude)}")
    return bundle, extra, report, result
