"""Safe checkpoint saving and loading.

Checkpoints are loaded with ``torch.load(..., weights_only=True)`` only: a file that holds a pickled
object (a whole ``nn.Module``) is refused with instructions to re-save it as a state_dict.
edgepose checkpoints are dicts ``{"format", "version", "model", "config", "state_dict", "info"}`` so
that ``edgepose export --model ckpt.pt`` rebuilds the right model without being told its name.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgepose.errors import CheckpointError
from edgepose.utils.fs import make_public

FORMAT = "edgepose-checkpoint"
VERSION = 1
INFO_KEY = "checkpoint_info"  # meta.config key of a loaded checkpoint's info (not a model argument)


def save_checkpoint(model, path: str | Path, *, info: dict | None = None) -> Path:
    """Write ``model``'s state_dict with its registry name and config, atomically (temp + rename)."""
    import torch

    meta = getattr(model, "edgepose_meta", None)
    if meta is None:
        raise CheckpointError(f"{type(model).__name__} has no edgepose_meta; build it with "
                              "edgepose.models.create(name) to save a self-describing checkpoint")
    config = {k: v for k, v in meta.config.items() if k != INFO_KEY}  # where it was loaded from: not a create() kwarg
    payload = {"format": FORMAT, "version": VERSION, "model": meta.name, "config": config,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "info": dict(info or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        make_public(tmp)
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``; clear errors for missing, corrupt or pickled files."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint "
                                  f"(unpickling failed: {_last_line(exc)})") from None
        raise CheckpointError(
            f"{path} is not a plain state_dict checkpoint (weights_only load refused it: "
            f"{_last_line(exc)}); it probably holds a pickled nn.Module. Re-save it where it was "
            "made with torch.save(model.state_dict(), 'weights.pth') and pass that file"
        ) from None
    except Exception as exc:  # noqa: BLE001 — torch.load of a non-checkpoint raises KeyError, RuntimeError, ...
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None


def _last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported" in ln or "GLOBAL" in ln]
    return (lines[0] if lines else str(exc).splitlines()[0])[:160]


def extract_state_dict(obj: Any, source: str = "checkpoint") -> dict:
    """Find the state_dict in common checkpoint layouts and strip a DataParallel ``module.`` prefix."""
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    elif isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source} holds {type(obj).__name__}, expected a state_dict "
                              "(a mapping of parameter names to tensors)")
    import torch

    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entry {bad[0]!r} is not a tensor; expected a state_dict")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def load_into(model, state_dict: dict, source: str = "checkpoint") -> None:
    """``load_state_dict(strict=True)`` with a one-line report of missing / unexpected / mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} with another shape (e.g. {shapes[0]})")
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def load_state_dict_file(model, path: str | Path) -> None:
    """Load a state_dict checkpoint (edgepose's, official SimpleBaseline's, or a bare one) into ``model``."""
    load_into(model, extract_state_dict(read_checkpoint(path), str(path)), str(path))


def load_checkpoint(path: str | Path, *, expect_model: str | None = None, overrides: dict | None = None):
    """Rebuild the model an edgepose checkpoint was saved from and load its weights."""
    from edgepose.models.registry import get_factory

    obj = read_checkpoint(path)
    if not (isinstance(obj, Mapping) and obj.get("format") == FORMAT):
        raise CheckpointError(f"{path} is not an edgepose checkpoint (no 'format': {FORMAT!r}); pass the model "
                              "name with --model NAME and this file with --weights")
    if obj.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {obj['version']}, this edgepose reads <= {VERSION}")
    name = obj["model"]
    if expect_model is not None and name != expect_model:
        raise CheckpointError(f"{path} holds model {name!r}, expected {expect_model!r}")
    config = {k: v for k, v in obj.get("config", {}).items() if k != INFO_KEY}  # written by earlier versions
    config.update(overrides or {})
    model = get_factory(name)(**config)
    load_into(model, extract_state_dict(obj["state_dict"], str(path)), str(path))
    model.edgepose_meta.config.setdefault(INFO_KEY, obj.get("info", {}))
    return model.eval()


def load_backbone_from(model, path: str | Path) -> int:
    """Copy the trunk weights (every tensor whose name and shape match, heads excluded) from another
    checkpoint — e.g. a trained top-down model's MobileNetV2 into a CenterNet with the same trunk.
    Returns the number of tensors copied; none matching is an error."""
    src = extract_state_dict(read_checkpoint(path), str(path))
    own = model.state_dict()
    trunk = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.", "features.")
    take = {k: v for k, v in src.items()
            if k.startswith(trunk) and k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not take:
        raise CheckpointError(f"{path} has no trunk tensors matching {type(model).__name__} "
                              "(expected the same backbone and width)")
    model.load_state_dict(take, strict=False)
    return len(take)


def load_model(name_or_path: str, weights: str | None = None):
    """A checkpoint path, or a registered model name with ``weights`` (default: its embedded weights when it has
    some; ConfigError naming the models that do otherwise). The model is in eval mode."""
    from edgepose.errors import ConfigError
    from edgepose.models import create, get_factory
    from edgepose.weights import DEFAULTS

    if Path(name_or_path).suffix in (".pt", ".pth", ".ckpt") or Path(name_or_path).is_file():
        return load_checkpoint(name_or_path)
    get_factory(name_or_path)  # unknown name → close-match error
    if weights is None and name_or_path in DEFAULTS:
        weights = "default"
    if weights is None:
        raise ConfigError(f"model {name_or_path!r} has no embedded default weights; pass --weights CKPT "
                          f"(models with defaults: {', '.join(sorted(DEFAULTS))})")
    return create(name_or_path, weights=weights).eval()
