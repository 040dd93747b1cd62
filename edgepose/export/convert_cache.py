"""Converted float models, kept by what they were converted from (opt-in: ``EDGEPOSE_CONVERT_CACHE=1``).

A litert-torch conversion costs 15-90 s on a small CPU and gives the same file for the same module, weights,
sample and converter versions. With ``EDGEPOSE_CONVERT_CACHE=1`` the first conversion is copied to
``$EDGEPOSE_CACHE/convert/`` (default ``~/.cache/edgepose``) and every later export of the same thing (another
precision, another decode placement of a copy, a test suite's next test) copies it back instead of converting.

The key covers everything the converted file depends on: every parameter and buffer (name, dtype, shape, bytes),
the module tree's repr, the code of every module class's ``forward`` (a monkeypatched or instance-level forward
included) and the source file of each class, the sample input's shape and values, the model's metadata and the
converter's and edgepose's versions. Edit a model's code, its weights or the converter and the key changes.
Failures are never cached. Files go in atomically (temp + rename), so concurrent exports can share the folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import marshal
import os
import shutil
import tempfile
from pathlib import Path

ENV = "EDGEPOSE_CONVERT_CACHE"


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def cache_dir() -> Path:
    from edgepose.data.sources import cache_dir as user_cache_dir  # $EDGEPOSE_CACHE, else ~/.cache/edgepose

    return user_cache_dir() / "convert"


def _code_bytes(fn) -> bytes:
    code = getattr(fn, "__code__", None)
    return marshal.dumps(code) if code is not None else repr(fn).encode()


def _source_bytes(cls: type, seen: dict[str, bytes]) -> bytes:
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:  # built-in classes
        return b""
    if not path:
        return b""
    if path not in seen:
        try:
            seen[path] = hashlib.sha256(Path(path).read_bytes()).digest()
        except OSError:
            seen[path] = path.encode()
    return seen[path]


def module_fingerprint(module) -> str:
    """sha256 hex of a torch module's weights, structure and code (see the module docstring)."""
    import torch

    h = hashlib.sha256(repr(module).encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    files: dict[str, bytes] = {}
    for m in module.modules():
        cls = type(m)
        h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        h.update(_code_bytes(m.__dict__.get("forward", cls.forward)))
        h.update(_source_bytes(cls, files))
    return h.hexdigest()


def cache_key(module, sample, *, converter: str, extra: dict) -> str:
    """Key of converting ``module`` on ``sample`` (a torch tensor) with ``converter`` (a distribution name)."""
    import numpy as np

    from edgepose import __version__

    arr = np.ascontiguousarray(sample.detach().cpu().numpy())
    payload = {"module": module_fingerprint(module), "sample": [list(arr.shape), str(arr.dtype),
                                                                hashlib.sha256(arr.tobytes()).hexdigest()],
               "converter": [converter, importlib.metadata.version(converter)],
               "torch": importlib.metadata.version("torch"), "edgepose": __version__, "extra": extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def fetch(key: str, suffix: str, dest: Path) -> bool:
    """Copy the cached file of ``key`` to ``dest``; False when there is none (or the cache is off)."""
    src = cache_dir() / f"{key}{suffix}"
    if not enabled() or not src.is_file():
        return False
    shutil.copyfile(src, dest)
    return True


def store(key: str, suffix: str, src: Path) -> None:
    """Keep a copy of ``src`` under ``key`` (atomic; a cache that cannot be written is skipped, not an error)."""
    if not enabled():
        return
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".part")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, root / f"{key}{suffix}")
    except OSError:
        return
