"""TensorRT engine cache: keys, locations, atomic writes and the compatibility check — pure Python.

A TensorRT engine is valid only for the TensorRT version and the GPU (compute capability) that built
it, so engines are cached per device: the key is the sha256 of (ONNX sha256, build settings, TensorRT
version, GPU name + compute capability). Engines live in ``<bundle>/engines/<key>.engine`` when the
bundle directory is writable, else in ``$EDGEPOSE_CACHE/engines/`` (default ``~/.cache/edgepose``).
Each engine has a sidecar ``<key>.json`` (TensorRT version, compute capability, GPU, created, ...)
written after the engine, so a sidecar means the engine file is complete.

Nothing here imports TensorRT or CUDA: the functions are testable on any machine.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import BundleError
from edgepose.utils.fs import make_public

ENGINE_DIR = "engines"
ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU an engine is built for: name (e.g. 'Orin') and compute capability 'major.minor' (e.g. '8.7')."""

    name: str
    compute_capability: str

    @property
    def sm(self) -> str:
        """'8.7' → 'sm_87'."""
        return "sm_" + self.compute_capability.replace(".", "")


@dataclass(frozen=True)
class EnginePaths:
    engine: Path
    sidecar: Path


def settings_json(settings: dict) -> str:
    """Canonical JSON of build settings (sorted keys, no spaces) — what the cache key hashes."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def cache_key(onnx_sha256: str, settings: dict, trt_version: str, device: DeviceInfo) -> str:
    """sha256 hex of everything an engine depends on; any change gives a new key (and a new build)."""
    payload = {"onnx_sha256": onnx_sha256, "settings": json.loads(settings_json(settings)),
               "tensorrt": str(trt_version), "gpu": device.name, "compute_capability": device.compute_capability}
    return hashlib.sha256(settings_json(payload).encode()).hexdigest()


def user_cache_dir() -> Path:
    """$EDGEPOSE_CACHE, else ~/.cache/edgepose (the same convention as the data cache)."""
    return Path(os.environ.get("EDGEPOSE_CACHE") or Path.home() / ".cache" / "edgepose")


def _paths_in(root: Path, key: str) -> EnginePaths:
    return EnginePaths(root / f"{key}{ENGINE_SUFFIX}", root / f"{key}{SIDECAR_SUFFIX}")


def _dir_writable(path: Path) -> bool:
    """True when files can be created in ``path`` (or in its nearest existing parent, if it does not exist)."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def engine_paths(bundle_path: str | Path, key: str, *, cache_root: str | Path | None = None) -> EnginePaths:
    """Where the engine for ``key`` is written: ``<bundle>/engines/`` if writable, else ``<cache>/engines/``."""
    bundle_dir = Path(bundle_path) / ENGINE_DIR
    if _dir_writable(bundle_dir):
        return _paths_in(bundle_dir, key)
    return _paths_in(Path(cache_root or user_cache_dir()) / ENGINE_DIR, key)


def find_engine(bundle_path: str | Path, key: str, *, cache_root: str | Path | None = None) -> EnginePaths | None:
    """The first complete cached engine for ``key`` (bundle first, then the user cache), or None."""
    for root in (Path(bundle_path) / ENGINE_DIR, Path(cache_root or user_cache_dir()) / ENGINE_DIR):
        paths = _paths_in(root, key)
        if paths.engine.is_file() and paths.sidecar.is_file():
            return paths
    return None


def make_sidecar(*, key: str, trt_version: str, device: DeviceInfo, onnx_sha256: str, settings: dict,
                 engine_sha256: str) -> dict:
    return {"key": key, "tensorrt_version": str(trt_version), "compute_capability": device.compute_capability,
            "gpu": device.name, "onnx_sha256": onnx_sha256, "settings": settings, "engine_sha256": engine_sha256,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        make_public(tmp)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_engine(paths: EnginePaths, engine: bytes, sidecar: dict) -> EnginePaths:
    """Write the engine, then its sidecar, each atomically (temp file + rename in the same directory)."""
    try:
        atomic_write(paths.engine, bytes(engine))
        atomic_write(paths.sidecar, json.dumps(sidecar, indent=2, sort_keys=True).encode())
    except OSError as exc:
        raise BundleError(f"cannot write the TensorRT engine to {paths.engine.parent}: {exc.strerror or exc}; "
                          "set EDGEPOSE_CACHE to a writable directory") from None
    return paths


def read_sidecar(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"engine sidecar {path} is missing; delete the engine beside it or run "
                          "`edgepose build BUNDLE`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"engine sidecar {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not {"tensorrt_version", "compute_capability"} <= data.keys():
        raise BundleError(f"engine sidecar {path} lacks tensorrt_version / compute_capability")
    return data


def check_engine_compat(sidecar: dict, trt_version: str, device: DeviceInfo, *, engine: str | Path = "engine") -> None:
    """Raise BundleError when an engine was built by another TensorRT version or for another GPU architecture."""
    built_trt, built_cc = str(sidecar.get("tensorrt_version")), str(sidecar.get("compute_capability"))
    if built_trt == str(trt_version) and built_cc == device.compute_capability:
        return
    built_sm = "sm_" + built_cc.replace(".", "")
    raise BundleError(f"{engine}: engine built with TensorRT {built_trt} on {built_sm}; this device has TensorRT "
                      f"{trt_version} on {device.sm}: delete it or run `edgepose build BUNDLE`")
