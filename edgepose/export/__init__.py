"""Export: torch → ONNX (with optional in-graph decoding) → per-target model files in a bundle.

``edgepose.export(model, target=..., out=...)`` is the public entry point. Because this subpackage has
the same name, importing it replaces the function attribute on ``edgepose``; the module is therefore
made callable so that ``edgepose.export(...)`` works either way. Its options: :class:`QuantOptions`,
:class:`ParityOptions` and the enums :class:`Precision`, :class:`DecodePlace`, :class:`CalibMethod`.
"""

import sys
import types

from edgepose.export.api import export
from edgepose.export.options import CalibMethod, DecodePlace, ParityOptions, Precision, QuantOptions


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["CalibMethod", "DecodePlace", "ParityOptions", "Precision", "QuantOptions", "export"]
