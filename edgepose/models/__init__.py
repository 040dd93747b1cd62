"""Model zoo: ``create(name, **kw)``, ``list_models()``, ``register_model``.

Importing this package imports torch (workstation side).
"""

from edgepose.models.registry import ModelMeta, create, get_factory, list_models, register_model

__all__ = ["ModelMeta", "create", "get_factory", "list_models", "register_model"]
