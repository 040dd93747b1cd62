"""A litert-torch float model's TRANSPOSE_CONV biases reshaped to 1-D, so ai-edge-quantizer and XNNPACK accept them
(used by :mod:`edgepose.export.targets.tflite` after every float conversion and before INT8 quantization)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

TRANSPOSE_CONV_BIAS = 3  # input index of the bias (output shape, weights, data, bias)


def with_1d_tconv_bias(src: Path) -> Path:
    """``src``, or a copy of it next to it (written once) whose TRANSPOSE_CONV biases of shape (1, .., 1, C)
    are reshaped to (C,): litert-torch folds ConvTranspose2d + BatchNorm into a 4-D bias, which
    ai-edge-quantizer 0.10 quantizes per channel along axis 0 (C scales on a size-1 axis, a file the
    interpreter refuses). Same data, same op; a bias tensor another op also reads is left as it is."""
    out = src.with_name(f"{src.stem}-1dbias{src.suffix}")
    if out.is_file() and out.stat().st_mtime_ns >= src.stat().st_mtime_ns:
        return out
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(src))
    tconv = {i for i, code in enumerate(model.operatorCodes)
             if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.TRANSPOSE_CONV}
    changed = 0
    for graph in model.subgraphs:
        uses = Counter(i for op in graph.operators for i in op.inputs)
        uses.update(list(graph.inputs) + list(graph.outputs))
        biases = Counter(op.inputs[TRANSPOSE_CONV_BIAS] for op in graph.operators
                         if op.opcodeIndex in tconv and len(op.inputs) > TRANSPOSE_CONV_BIAS)
        for index, count in biases.items():
            if index < 0 or uses[index] != count:
                continue
            tensor = graph.tensors[index]
            shape = [int(v) for v in tensor.shape]
            if len(shape) > 1 and all(v == 1 for v in shape[:-1]):
                tensor.shape, tensor.shapeSignature = [shape[-1]], None
                changed += 1
    if not changed:
        return src
    tmp = out.with_name(f".{out.name}.tmp")
    flatbuffer_utils.write_model(model, str(tmp))
    os.replace(tmp, out)  # a half-written file never passes the freshness check above
    return out
