"""Names of the layers a quantizer turns INT8, read from an ONNX graph (the default ``quantizable_layers``)."""

from __future__ import annotations

from pathlib import Path

QUANTIZABLE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def onnx_quantizable_nodes(path: str | Path, ops: tuple[str, ...] = QUANTIZABLE_OPS) -> list[str]:
    """Node names of ``ops`` in graph order (nodes without a name are reported by their first output)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name or n.output[0] for n in graph.node if n.op_type in ops]
