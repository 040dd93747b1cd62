"""Export: torch → ONNX (with optional in-graph decoding) → per-target model files in a bundle."""

from edgepose.export.api import export

__all__ = ["export"]
