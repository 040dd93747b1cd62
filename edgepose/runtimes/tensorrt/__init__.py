"""TensorRT backend: a bundle carries the ONNX + build.json; the engine is built on the device and cached.

    rt = edgepose.load("bundles/trt")          # finds or builds <bundle>/engines/<key>.engine
    path = build_engine("bundles/trt")         # ahead of time (`edgepose build BUNDLE`)

Engines are tied to the TensorRT version and the GPU, so the cache key covers both (see ``cache.py``).
I/O buffers are allocated once for the profile's largest batch; ``infer_impl`` sets the input shape,
copies in, runs ``execute_async_v3`` on the runtime's stream, copies out and synchronizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgepose.errors import BundleError, EdgeposeError
from edgepose.runtimes.base import Runtime
from edgepose.runtimes.spec import ModelSpec
from edgepose.runtimes.tensorrt.settings import BUILD_FILE, BuildSettings
from edgepose.utils.lazy import is_importable
from edgepose.utils.options import check_threads

TRT_MISSING = ("tensorrt is not installed (it comes with JetPack 6.1+ on Jetson Orin: make the venv with "
               "--system-site-packages; on x86 from NVIDIA's pip index: pip install 'tensorrt-cu12>=10,<11')")
TRT_MAJOR = 10  # written against the TensorRT 10 API: 8.x lacks it, 11 drops weak typing and FP16 / INT8 flags


def version_problem(version: str) -> str:
    """'' for a TensorRT 10.x version string, else why edgepose cannot use it."""
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        return f"TensorRT version {version!r} is not a version number"
    if major < TRT_MAJOR:
        return (f"TensorRT {version} found; edgepose needs TensorRT {TRT_MAJOR} (JetPack 6.1+, Jetson Orin). Jetson "
                "Nano / TX2 / Xavier (JetPack 4 / 5, TensorRT 8) are not supported: build the bundle's model.onnx "
                "with trtexec there, or use --target onnx / tflite")
    if major > TRT_MAJOR:
        return (f"TensorRT {version} found; edgepose is written for TensorRT {TRT_MAJOR} (TensorRT 11 removed the "
                f"FP16 / INT8 builder flags it uses): pip install 'tensorrt-cu12>={TRT_MAJOR},<{TRT_MAJOR + 1}'")
    return ""


def unavailable_reason() -> str:
    """One line saying why the backend cannot run here ('' when it can)."""
    if not is_importable("tensorrt"):
        return TRT_MISSING
    import importlib

    try:
        trt = importlib.import_module("tensorrt")
    except Exception as exc:  # noqa: BLE001 — installed but broken (libnvinfer missing, wrong CUDA)
        return f"tensorrt is installed but does not import ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    problem = version_problem(getattr(trt, "__version__", "?"))
    if problem:
        return problem
    from edgepose.runtimes.tensorrt.engine import cuda_device_count

    try:
        count = cuda_device_count()
    except (ImportError, OSError, RuntimeError) as exc:  # a broken CUDA install reads as "unavailable"
        return f"no CUDA GPU (the CUDA query failed: {type(exc).__name__}: {exc})"
    if count is None:
        return "no way to reach the GPU: pip install cuda-python (or install a torch build with CUDA)"
    return "" if count > 0 else "no CUDA GPU"


def is_available() -> bool:
    """tensorrt importable and a CUDA device present."""
    return unavailable_reason() == ""


def trt_version() -> str:
    from edgepose.runtimes.tensorrt.engine import trt_module

    return str(trt_module().__version__)


def read_build_settings(bundle) -> BuildSettings:
    path = bundle.path / bundle.manifest.get("build_file", BUILD_FILE)
    if not path.is_file():
        raise BundleError(f"TensorRT bundle {bundle.path} has no {path.name}; re-export it with --target tensorrt")
    try:
        return BuildSettings.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON ({exc})") from None


def _onnx_of(bundle) -> tuple[Path, str]:
    """(ONNX path, its sha256 — from the verified manifest when listed)."""
    from edgepose.bundle import sha256_file

    name = bundle.manifest.get("onnx_file", bundle.manifest["model_file"])
    info = bundle.manifest.get("files", {}).get(name)
    path = bundle.path / name
    return path, (info["sha256"] if info else sha256_file(path))


class TensorRTRuntime(Runtime):
    backend = "tensorrt"

    def __init__(self, onnx_path: str | Path, spec: ModelSpec, settings: BuildSettings, *, onnx_sha256: str,
                 bundle_path: str | Path, engine: str | Path | None = None, build: bool = True,
                 cache_dir: str | Path | None = None, buffers: str = "auto", device: int = 0, log=print,
                 threads: int | None = None):
        super().__init__(spec)
        # ``threads`` is accepted so every backend takes the same load options (edgepose.load(b, threads=2)):
        # TensorRT computes on the GPU; host-side work (pre/post-processing) is numpy / OpenCV's own threads.
        self.threads = check_threads(threads)
        self.onnx_path, self.onnx_sha256, self.settings = Path(onnx_path), onnx_sha256, settings
        self.bundle_path, self.engine_file = Path(bundle_path), (Path(engine) if engine else None)
        self.build, self.cache_dir, self.buffers, self.device, self.log = build, cache_dir, buffers, device, log
        self.engine_path: Path | None = None
        self._trt = self._engine = self._context = self._mem = None
        self._inputs: list = []
        self._outputs: list = []
        self._ptrs: dict[str, int] = {}

    @classmethod
    def from_bundle(cls, bundle, **options) -> TensorRTRuntime:
        onnx_path, digest = _onnx_of(bundle)
        return cls(onnx_path, bundle.spec(), read_build_settings(bundle), onnx_sha256=digest,
                   bundle_path=bundle.path, **options)

    # ---- lifecycle ---------------------------------------------------------------------------
    def load_impl(self) -> None:
        from edgepose.runtimes.tensorrt.engine import deserialize, gpu_memory

        self._mem = gpu_memory(self.buffers, self.device)
        try:
            self.engine_path = self._resolve_engine(self._mem.device_info())
            self._trt, self._engine = deserialize(self.engine_path.read_bytes(), self.engine_path,
                                                  dla_core=self.settings.dla_core)
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise EdgeposeError(f"TensorRT could not create an execution context for {self.engine_path}")
            self._allocate()
        except BaseException:
            self.close_impl()
            raise

    def _resolve_engine(self, device) -> Path:
        from edgepose.runtimes.tensorrt.engine import ensure_engine, explicit_engine

        version = trt_version()
        if self.engine_file is not None:
            return explicit_engine(self.engine_file, version, device)
        return ensure_engine(self.bundle_path, self.onnx_path, self.onnx_sha256, self.settings,
                             trt_version=version, device=device, cache_root=self.cache_dir, build=self.build,
                             log=self.log)

    def _allocate(self) -> None:
        """One device buffer per I/O tensor, sized for the profile's max shapes; addresses bound once."""
        from edgepose.runtimes.tensorrt.engine import io_tensors

        infos = io_tensors(self._engine)
        self._inputs = [t for t in infos if t.is_input]
        self._outputs = [t for t in infos if not t.is_input]
        if len(self._inputs) != 1:
            raise BundleError(f"{self.engine_path} has inputs {[t.name for t in self._inputs]}; edgepose runs "
                              "single-input models")
        for t in self._inputs:
            self._context.set_input_shape(t.name, tuple(self.settings.profile[t.name]["max"]))
        for t in infos:
            shape = tuple(self._context.get_tensor_shape(t.name))
            ptr = self._mem.alloc(int(np.prod(shape)) * t.dtype.itemsize)
            self._ptrs[t.name] = ptr
            self._context.set_tensor_address(t.name, ptr)

    def close_impl(self) -> None:
        if self._mem is not None:
            self._mem.close()
        self._context = self._engine = self._trt = self._mem = None
        self._ptrs.clear()

    # ---- inference ---------------------------------------------------------------------------
    def input_metadata_impl(self) -> dict[str, tuple[tuple, str]]:
        t = self._inputs[0]
        shape = (-1 if self.settings.dynamic_batch else t.shape[0], *t.shape[1:])
        return {t.name: (shape, t.dtype.name)}

    def infer_impl(self, tensor: np.ndarray) -> list[np.ndarray]:
        """A batch of any size: split into chunks of at most the profile's max batch."""
        step = self.settings.max_batch
        chunks = [self._run(tensor[i:i + step]) for i in range(0, tensor.shape[0], step)]
        if len(chunks) == 1:
            return chunks[0]
        return [np.concatenate([c[j] for c in chunks]) for j in range(len(chunks[0]))]

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        name = self._inputs[0].name
        x = np.ascontiguousarray(x)
        if not self._context.set_input_shape(name, tuple(x.shape)):
            raise EdgeposeError(f"TensorRT rejected input shape {x.shape} for {name!r} "
                                f"(profile {self.settings.profile[name]})")
        self._mem.upload(self._ptrs[name], x)
        if not self._context.execute_async_v3(self._mem.stream):
            raise EdgeposeError(f"TensorRT execute_async_v3 failed on {self.engine_path}")
        outs = []
        for t in self._outputs:
            host = np.empty(tuple(self._context.get_tensor_shape(t.name)), t.dtype)
            self._mem.download(host, self._ptrs[t.name])
            outs.append(host)
        self._mem.synchronize()
        return outs


def build_engine(bundle_path: str | Path, *, force: bool = False, cache_dir: str | Path | None = None,
                 buffers: str = "auto", device: int = 0, log=print) -> Path:
    """Build (or find) this device's engine for a TensorRT bundle ahead of the first load; returns its path."""
    from edgepose.bundle import read_bundle
    from edgepose.errors import BackendUnavailable
    from edgepose.runtimes.tensorrt.engine import ensure_engine, gpu_memory

    bundle = read_bundle(bundle_path)
    if bundle.target != "tensorrt":
        raise BundleError(f"{bundle.path} is a {bundle.target!r} bundle; `edgepose build` needs a tensorrt bundle")
    if not is_available():
        raise BackendUnavailable(f"cannot build a TensorRT engine here: {unavailable_reason()}")
    onnx_path, digest = _onnx_of(bundle)
    mem = gpu_memory(buffers, device)
    try:
        info = mem.device_info()
    finally:
        mem.close()
    return ensure_engine(bundle.path, onnx_path, digest, read_build_settings(bundle), trt_version=trt_version(),
                         device=info, cache_root=cache_dir, force=force, log=log)


__all__ = ["TensorRTRuntime", "build_engine", "is_available", "read_build_settings", "unavailable_reason"]
