"""torch → a single-file ONNX model, in eval mode, with BatchNorm folded and an optional onnxslim pass.

The legacy TorchScript exporter is used (``dynamo=False``): it keeps the requested opset and writes one
file; Conv+BN are folded by its constant folding and the BN that follows a ConvTranspose (which it
leaves) is folded here, so every target sees the same lean graph. A bring-your-own model whose trace fails
(raises, or fails the parity gate) is exported once more with the dynamo exporter (``torch.export``, opset >= 18);
the manifest's ``export.exporter`` says which one wrote the graph.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, ExportError
from edgepose.heads import get_head


def output_names(kind: str, codec: dict, decode: str) -> list[str]:
    """The graph's output names for a model of output ``kind`` with ``codec`` (a dict), decoded at ``decode``."""
    return get_head(kind).output_names(codec, decode)


@dataclass
class OnnxExport:
    path: Path
    input_name: str
    output_names: list[str]
    opset: int
    batch: int | None  # None = dynamic
    folded_bn: int = 0
    notes: list[str] = field(default_factory=list)
    exporter: str = "torchscript"  # or "dynamo" (torch.export), the fallback of a bring-your-own model


def wrap_for_export(model, decode: str):
    """The nn.Module that is exported: the model, followed by the in-graph decoder when decode='graph'."""
    from edgepose.codecs import codec_from_dict
    from edgepose.codecs.graph import DecodedModel

    meta = model.edgepose_meta
    if decode == "host":
        return model.eval()
    codec = codec_from_dict(meta.codec)  # the heatmap decoder runs the codec's own method: argmax, DARK or UDP
    return DecodedModel(model, get_head(meta.kind).graph_decoder(codec)).eval()


def export_onnx(model, path: str | Path, *, decode: str = "host", opset: int = 17, batch: int | None = 1,
                slim: bool = True, exporter: str = "torchscript") -> OnnxExport:
    """Export ``model`` (with edgepose_meta) to ``path``. ``batch=None`` makes the batch axis dynamic.
    ``exporter``: "torchscript" (the trace, ``dynamo=False``) or "dynamo" (``torch.export``; opset >= 18)."""
    import onnx
    import torch

    if opset < 13 or opset > 21:
        raise ConfigError(f"opset must be between 13 and 21, got {opset}")
    if exporter not in ("torchscript", "dynamo"):
        raise ConfigError(f"exporter {exporter!r}: expected torchscript or dynamo")
    meta = model.edgepose_meta
    names = output_names(meta.kind, meta.codec, decode)
    wrapper = wrap_for_export(model, decode)
    w, h = meta.input_size
    x = torch.randn(batch or 1, 3, h, w, generator=torch.Generator().manual_seed(0))
    dynamic = {n: {0: "batch"} for n in ["input", *names]} if batch is None else None
    if exporter == "dynamo":
        proto = _dynamo_proto(wrapper, x, names, opset, batch, meta.name)
    else:
        buf = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter warns that it cannot fold the Slice it writes for an asymmetric F.pad
            # (MoveNet's TF-SAME stride-2 padding); the Pad it exports is exact, and onnxslim folds it into the Conv
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            try:
                torch.onnx.export(wrapper, (x,), buf, dynamo=False, opset_version=opset, input_names=["input"],
                                  output_names=names, dynamic_axes=dynamic, do_constant_folding=True)
            except Exception as exc:
                raise ExportError(f"torch.onnx.export failed for {meta.name}: {_first_line(exc)}") from exc
        proto = onnx.load_from_string(buf.getvalue())
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    folded = fold_convtranspose_bn(proto)
    notes = [] if exporter == "torchscript" else [f"exported with the {exporter} exporter, opset {opset}"]
    if slim:
        proto, note = _slim(proto)
        notes.append(note)
    onnx.checker.check_model(proto)
    path = Path(path)
    onnx.save(proto, str(path))
    return OnnxExport(path, "input", names, opset, batch, folded, notes, exporter)


def _dynamo_proto(wrapper, x, names: list[str], opset: int, batch: int | None, name: str):
    """The ModelProto of ``wrapper`` from the dynamo exporter (``torch.export``), in one piece (no external data)."""
    import logging

    import torch

    dynamic = ({0: torch.export.Dim("batch", min=1, max=64)},) if batch is None else None
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(wrapper, (x,), None, dynamo=True, opset_version=max(opset, 18),
                                        input_names=["input"], output_names=names, dynamic_shapes=dynamic,
                                        external_data=False, verbose=False)
        return program.model_proto
    except Exception as exc:
        raise ExportError(f"torch.onnx.export(dynamo=True) failed for {name}: {_first_line(exc)}") from exc
    finally:
        quiet.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _slim(proto):
    try:
        import onnxslim
    except ImportError:
        return proto, "onnxslim not installed: graph left as exported"
    try:
        return onnxslim.slim(proto), "onnxslim applied"
    except Exception as exc:  # a cleanup pass must never break an export
        return proto, f"onnxslim failed ({type(exc).__name__}); graph left as exported"


def fold_convtranspose_bn(proto) -> int:
    """Fold BatchNormalization nodes that directly follow a ConvTranspose into its weights; returns the count."""
    from onnx import numpy_helper

    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    producer = {o: n for n in graph.node for o in n.output}
    folded = 0
    for bn in list(graph.node):
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1:
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "ConvTranspose" or consumers.get(conv.output[0], 0) != 1:
            continue
        if not all(name in inits for name in bn.input[1:5]) or conv.input[1] not in inits:
            continue
        _fold_one(graph, conv, bn, inits, numpy_helper)
        folded += 1
    return folded


def _fold_one(graph, conv, bn, inits, numpy_helper) -> None:
    eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
    group = next((a.i for a in conv.attribute if a.name == "group"), 1)
    gamma, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
    w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)  # (Cin, Cout/group, kh, kw)
    scale = gamma / np.sqrt(var + eps)
    cin, cpg = w.shape[:2]
    w = w.reshape(group, cin // group, cpg, *w.shape[2:]) * scale.reshape(group, 1, cpg, 1, 1)
    w = w.reshape(cin, cpg, *w.shape[3:])
    b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 else 0.0
    b = (b - mean) * scale + beta
    wname, bname = conv.output[0] + "_folded_W", conv.output[0] + "_folded_B"
    graph.initializer.extend([numpy_helper.from_array(w.astype(np.float32), wname),
                              numpy_helper.from_array(b.astype(np.float32), bname)])
    del conv.input[1:]
    conv.input.extend([wname, bname])
    conv.output[0] = bn.output[0]
    graph.node.remove(bn)
