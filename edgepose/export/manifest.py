"""The manifest an export writes (without file hashes: the bundle writer adds those), and the source-model hash."""

from __future__ import annotations

import copy
import hashlib


def source_hash(model) -> str:
    """sha256 over the model's state_dict (names, shapes and bytes), independent of file format (a bring-your-own
    adapter's: the user's own module's)."""
    model = getattr(model, "byo_source", model)
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def model_entry(model, spec) -> dict:
    """The manifest's "model" part: name, rebuild config, source hash and cost. The cost is parameters and
    multiply-accumulates of one batch-1 pass at the bundle's input size, for ``edgepose info`` and GMAC/s from a
    measured latency. Computed once per export: auto-mixed precision reuses it for every candidate."""
    from edgepose.models.cost import model_cost

    meta = model.edgepose_meta
    cost = model_cost(model, tuple(spec.input.size))
    config = dict(meta.config)
    config.pop("checkpoint_info", None)
    return {"name": meta.name, "config": config, "source_sha256": source_hash(model),
            "cost": {"params": cost.params, "macs": cost.macs, "input_size": list(cost.input_size)}}


def bundle_manifest(model, tgt, ctx, extra: dict, model_part: dict | None = None) -> dict:
    """The bundle manifest (without file hashes) for ``extra`` = the target's build result; ``model_part``: a
    :func:`model_entry` already computed for this model and input (else computed here)."""
    onnx_exp = ctx.onnx
    manifest = {
        "target": tgt.name, "backend": tgt.backend, "backend_version": tgt.backend_version(),
        "precision": ctx.precision, "spec": ctx.spec.to_dict(),
        "model": copy.deepcopy(model_part) if model_part else model_entry(model, ctx.spec),
        "export": {"opset": onnx_exp.opset, "decode": ctx.spec.decode, "batch": onnx_exp.batch,
                   "folded_convtranspose_bn": onnx_exp.folded_bn, "notes": onnx_exp.notes,
                   "exporter": getattr(onnx_exp, "exporter", "torchscript")},
        "quantization": None, **extra,
    }
    if getattr(model, "edgepose_byo", None):  # bring your own: what the dry run read from the model's outputs
        manifest["export"]["byo"] = dict(model.edgepose_byo)
    if ctx.options.get("device_profile"):  # export --device: what the bundle is for, and its thread count
        manifest["device_profile"] = dict(ctx.options["device_profile"])
    return manifest
