"""TensorRT 10 calls (build, deserialize, I/O tensors), GPU memory, and the find-or-build engine step.

Only functions called on a machine with TensorRT import ``tensorrt``; nothing here imports torch unless
cuda-python is missing and torch is the only way to reach the GPU (``buffers="auto"``).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import BackendUnavailable, BundleError, ConfigError, EdgeposeError
from edgepose.runtimes.tensorrt.cache import (
    DeviceInfo,
    EnginePaths,
    atomic_write,
    cache_key,
    check_engine_compat,
    engine_paths,
    find_engine,
    make_sidecar,
    read_sidecar,
    user_cache_dir,
    write_engine,
)
from edgepose.runtimes.tensorrt.settings import BuildSettings
from edgepose.utils.lazy import is_importable, require

BUFFERS = ("auto", "cuda-python", "torch")


def trt_module():
    return require("tensorrt", "the tensorrt backend")


_LOGGER = None


def trt_logger(trt):
    """One logger for every builder and runtime (TensorRT keeps the first and warns about others)."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


# ---- build ------------------------------------------------------------------------------------
def _parse_onnx(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BundleError(f"TensorRT cannot parse {onnx_path}: {errors[:300] or 'no parser message'}")
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    return network, parser, inputs


DECODER_PREFIX = "/decoder/"  # ONNX node names of the in-graph decoder (edgepose.codecs.graph.DecodedModel)


def pin_decoder_fp32(trt, network, config) -> int:
    """Keep the in-graph keypoint decoder in FP32 inside an FP16 / INT8 engine.

    The DARK refinement takes logs of heatmap values floored at 1e-10, below FP16's smallest number, and the
    Taylor step divides by a Hessian determinant: at reduced precision it would silently fall back to the
    integer argmax. Returns the number of layers pinned.
    """
    pinned = 0
    floats = (trt.float16, trt.float32)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if not layer.name.startswith(DECODER_PREFIX) or layer.type == trt.LayerType.CONSTANT:
            continue
        outs = [layer.get_output(j) for j in range(layer.num_outputs)]
        # as Polygraphy's precision marking: only layers computing float data, not index / shape arithmetic
        if not any(t.dtype in floats and not getattr(t, "is_shape_tensor", False) for t in outs):
            continue
        layer.precision = trt.float32
        for j, t in enumerate(outs):
            if t.dtype in floats:
                layer.set_output_type(j, trt.float32)
        pinned += 1
    if pinned:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    return pinned


def _configure(trt, builder, settings: BuildSettings, inputs: list[str]):
    missing = [n for n in inputs if n not in settings.profile]
    if missing:
        raise BundleError(f"build.json profile has inputs {sorted(settings.profile)}, the ONNX has {inputs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
    for flag in settings.flags:
        if not hasattr(trt.BuilderFlag, flag):
            raise BundleError(f"build.json asks for builder flag {flag!r}, which TensorRT {trt.__version__} does "
                              "not have; re-export the bundle with this edgepose")
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if not settings.tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    config.builder_optimization_level = settings.builder_optimization_level
    if settings.dla_core is not None:
        if settings.dla_core >= builder.num_DLA_cores:
            raise ConfigError(f"dla_core {settings.dla_core}: this device has {builder.num_DLA_cores} DLA core(s) "
                              "(Xavier / Orin NX / AGX have 2, Orin Nano and x86 GPUs none)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = settings.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    profile = builder.create_optimization_profile()
    for name, p in settings.profile.items():
        profile.set_shape(name, tuple(p["min"]), tuple(p["opt"]), tuple(p["max"]))
    config.add_optimization_profile(profile)
    return config


def build_serialized(onnx_path: str | Path, settings: BuildSettings, *, timing_cache: Path | None = None,
                     log: Callable[[str], None] | None = print) -> bytes:
    """Parse the ONNX and build a serialized engine with ``settings``; ``timing_cache`` is read and updated."""
    trt = trt_module()
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network, _parser, inputs = _parse_onnx(trt, builder, logger, Path(onnx_path))
    config = _configure(trt, builder, settings, inputs)
    if settings.precision != "fp32":
        pin_decoder_fp32(trt, network, config)
    use_cache = bool(settings.timing_cache and timing_cache is not None)
    if use_cache:
        previous = timing_cache.read_bytes() if timing_cache.is_file() else b""
        cache = config.create_timing_cache(previous)
        if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
            if log:
                log(f"tensorrt: timing cache {timing_cache} does not fit this device; building without it")
            use_cache = False
    if log:
        log(f"tensorrt: building a {settings.precision} engine from {Path(onnx_path).name} (this takes a while)")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BundleError(f"TensorRT could not build an engine from {onnx_path} ({settings.precision}, "
                          f"workspace {settings.workspace_mib} MiB); see the TensorRT log above")
    updated = config.get_timing_cache() if use_cache else None
    if updated is not None:
        atomic_write(timing_cache, bytes(updated.serialize()))
    return bytes(serialized)


def timing_cache_path(trt_version: str, device: DeviceInfo, cache_root: str | Path | None = None) -> Path:
    gpu = "".join(c if c.isalnum() else "-" for c in device.name).strip("-").lower() or "gpu"
    return Path(cache_root or user_cache_dir()) / "timing" / f"trt{trt_version}-{device.sm}-{gpu}.cache"


# ---- find or build ------------------------------------------------------------------------------
def ensure_engine(bundle_path: Path, onnx_path: Path, onnx_sha256: str, settings: BuildSettings, *,
                  trt_version: str, device: DeviceInfo, cache_root: str | Path | None = None, build: bool = True,
                  force: bool = False, build_fn: Callable[..., bytes] = build_serialized,
                  log: Callable[[str], None] | None = print) -> Path:
    """Path of a compatible engine for this device: a cached one, or a new one built with ``build_fn``."""
    key = cache_key(onnx_sha256, settings.to_dict(), trt_version, device)
    found = None if force else find_engine(bundle_path, key, cache_root=cache_root)
    if found is not None:
        check_engine_compat(read_sidecar(found.sidecar), trt_version, device, engine=found.engine)
        return found.engine
    if not build:
        raise BundleError(f"no TensorRT engine for this device (TensorRT {trt_version} on {device.sm}) in "
                          f"{bundle_path / 'engines'} or the cache; run `edgepose build {bundle_path}`")
    data = build_fn(onnx_path, settings, timing_cache=timing_cache_path(trt_version, device, cache_root), log=log)
    paths = engine_paths(bundle_path, key, cache_root=cache_root)
    sidecar = make_sidecar(key=key, trt_version=trt_version, device=device, onnx_sha256=onnx_sha256,
                           settings=settings.to_dict(), engine_sha256=hashlib.sha256(data).hexdigest())
    write_engine(paths, data, sidecar)
    if log:
        log(f"tensorrt: engine cached at {paths.engine}")
    return paths.engine


def explicit_engine(path: str | Path, trt_version: str, device: DeviceInfo) -> Path:
    """A user-given engine file: its sidecar (<name>.json) must match this device's TensorRT and GPU."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"engine file not found: {path}")
    sidecar = EnginePaths(path, path.with_suffix(".json")).sidecar
    check_engine_compat(read_sidecar(sidecar), trt_version, device, engine=path)
    return path


# ---- run ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorInfo:
    name: str
    is_input: bool
    shape: tuple  # -1 for dynamic dims
    dtype: np.dtype


def deserialize(data: bytes, source: str | Path = "engine", dla_core: int | None = None):
    """→ (trt.Runtime, trt.ICudaEngine); the runtime must outlive the engine. An engine built for a DLA core
    needs the runtime on that core (the runtime's default is -1, none)."""
    trt = trt_module()
    runtime = trt.Runtime(trt_logger(trt))
    if dla_core is not None:
        runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise BundleError(f"TensorRT could not deserialize {source} (corrupt, or built by another TensorRT / GPU); "
                          "delete it or run `edgepose build BUNDLE`")
    return runtime, engine


def io_tensors(engine) -> list[TensorInfo]:
    trt = trt_module()
    infos = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        infos.append(TensorInfo(name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                                tuple(int(d) for d in engine.get_tensor_shape(name)),
                                np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
    return infos


# ---- GPU memory: cuda-python (cudart) or torch ---------------------------------------------------
def _cudart():
    for name in ("cuda.bindings.runtime", "cuda.cudart"):  # cuda-python >= 12.6, then older layouts
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _check(result, what: str):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(getattr(err, "value", err)) != 0:  # cudaError_t.cudaSuccess == 0
        raise EdgeposeError(f"CUDA {what} failed: {err}")
    return rest[0] if len(rest) == 1 else rest


class CudartMemory:
    """Device buffers and one stream through cuda-python's runtime API (cudaMalloc / cudaMemcpyAsync)."""

    def __init__(self, cudart, device: int = 0):
        self.rt = cudart
        _check(cudart.cudaSetDevice(device), "cudaSetDevice")
        self.device = device
        self._stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._ptrs: list[int] = []

    @property
    def stream(self) -> int:
        return int(self._stream)

    def device_info(self) -> DeviceInfo:
        props = _check(self.rt.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return DeviceInfo(name.rstrip("\x00").strip(), f"{props.major}.{props.minor}")

    def alloc(self, nbytes: int) -> int:
        ptr = int(_check(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc"))
        self._ptrs.append(ptr)
        return ptr

    def upload(self, ptr: int, host: np.ndarray) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        _check(self.rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def download(self, host: np.ndarray, ptr: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(self.rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def synchronize(self) -> None:
        _check(self.rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def close(self) -> None:
        for ptr in self._ptrs:
            self.rt.cudaFree(ptr)
        self._ptrs.clear()
        if self._stream is not None:
            self.rt.cudaStreamDestroy(self._stream)
            self._stream = None


class TorchMemory:
    """The same interface over torch.cuda byte tensors (used when cuda-python is not installed)."""

    def __init__(self, torch, device: int = 0):
        self.torch, self.device = torch, torch.device("cuda", device)
        torch.cuda.set_device(self.device)  # TensorRT runs on the current device: the buffers' one
        self._stream = torch.cuda.Stream(device=self.device)
        self._tensors: dict[int, object] = {}

    @property
    def stream(self) -> int:
        return int(self._stream.cuda_stream)

    def device_info(self) -> DeviceInfo:
        major, minor = self.torch.cuda.get_device_capability(self.device)
        return DeviceInfo(self.torch.cuda.get_device_name(self.device), f"{major}.{minor}")

    def alloc(self, nbytes: int) -> int:
        t = self.torch.empty(max(int(nbytes), 1), dtype=self.torch.uint8, device=self.device)
        self._tensors[int(t.data_ptr())] = t
        return int(t.data_ptr())

    def upload(self, ptr: int, host: np.ndarray) -> None:
        src = self.torch.from_numpy(host.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(self._stream):
            self._tensors[ptr][: host.nbytes].copy_(src)

    def download(self, host: np.ndarray, ptr: int) -> None:
        with self.torch.cuda.stream(self._stream):
            data = self._tensors[ptr][: host.nbytes].cpu().numpy()
        host.reshape(-1).view(np.uint8)[:] = data

    def synchronize(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        self._tensors.clear()


def gpu_memory(buffers: str = "auto", device: int = 0):
    """cuda-python first (no torch on the device side), torch with CUDA as the fallback."""
    if buffers not in BUFFERS:
        raise ConfigError(f"buffers must be one of {BUFFERS}, got {buffers!r}")
    cudart = _cudart() if buffers in ("auto", "cuda-python") else None
    if cudart is not None:
        return CudartMemory(cudart, device)
    if buffers in ("auto", "torch") and is_importable("torch"):
        torch = importlib.import_module("torch")
        if torch.cuda.is_available():
            return TorchMemory(torch, device)
    raise BackendUnavailable(f"no GPU memory helper for buffers={buffers!r}: pip install cuda-python "
                             "(or use a torch build with CUDA)")


def cuda_device_count() -> int | None:
    """Number of CUDA GPUs, or None when neither cuda-python nor torch is installed to ask."""
    cudart = _cudart()
    if cudart is not None:
        err, count = cudart.cudaGetDeviceCount()
        if int(getattr(err, "value", err)) != 0:
            raise RuntimeError(f"cudaGetDeviceCount returned {err} (a CUDA runtime newer than the driver? "
                               "cuda-python 13 needs a CUDA 13 driver; JetPack 6 has CUDA 12: cuda-python<13)")
        return int(count)
    if is_importable("torch"):
        return int(importlib.import_module("torch").cuda.device_count())
    return None
