"""OpenVINO backend: runs an OpenVINO IR bundle (model.xml + model.bin) or an ONNX bundle (read directly).

    rt = edgepose.load("bundles/ov", device="CPU", threads=2, hint="latency")
    rt.effective_precision            # what the device really computes in: 'f32', 'bf16', 'f16' (None on AUTO)

Precision: OpenVINO's CPU plugin runs bf16 by default on CPUs with bf16 support (AVX512-BF16 / AMX), and
maps an 'f16' hint to bf16 on CPUs without f16 arithmetic. An fp32 bundle therefore runs with
``INFERENCE_PRECISION_HINT=f32`` unless the caller asks otherwise; ``inference_precision='auto'`` leaves
the choice to OpenVINO. When the device computes in a precision other than the one asked for, a
``RuntimeWarning`` says so — never silently.

Bundle precisions (the manifest's ``openvino.inference_precision`` wins when present): fp32 → 'f32'; int8 →
'f32' (the quantized ops run u8/i8 whatever the hint; the layers kept in float stay f32, as the accuracy gate
measured them); fp16 → 'f16', which only devices with f16 arithmetic compute in f16 (GPU, NPU, CPUs with
AVX512-FP16 / AMX-FP16); other CPUs compute it in bf16 or f32 and the warning above says so.

Input/output tensors are whatever the model file declares (NCHW float32 for edgepose exports).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from edgepose.errors import BundleError, ConfigError, suggest
from edgepose.runtimes.base import Runtime
from edgepose.runtimes.spec import ModelSpec
from edgepose.utils.lazy import is_importable, require
from edgepose.utils.options import check_threads

OPTIONS = ("device", "threads", "hint", "inference_precision")
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
_OPTION_OF = {"PERFORMANCE_HINT": "hint", "INFERENCE_NUM_THREADS": "threads",
              "INFERENCE_PRECISION_HINT": "inference_precision"}
INFERENCE_PRECISIONS = ("f32", "bf16", "f16", "auto")
PHYSICAL_DEVICES = ("CPU", "GPU", "NPU")
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO")  # forward properties to the devices they pick
# bundle precision → inference precision used when the caller does not choose one
DEFAULT_INFERENCE_PRECISION = {"fp32": "f32", "int8": "f32", "fp16": "f16"}
_DEVICE_RE = re.compile(r"^(?:(CPU|GPU|NPU)(?:\.\d+)?|(AUTO|MULTI|HETERO)(?::[A-Z0-9.]+(?:,[A-Z0-9.]+)*)?)$")


def is_available() -> bool:
    return is_importable("openvino")


def available_devices() -> list[str]:
    """Devices OpenVINO can use here, e.g. ['CPU', 'GPU.0'] (imports openvino)."""
    ov = require("openvino", "the openvino backend")
    return list(ov.Core().available_devices)


def ov_message(exc: BaseException) -> str:
    """The informative line of an OpenVINO exception (its first lines are 'Exception from src/...cpp:N:')."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from ", "Check '"))]
    text = (useful or lines or [type(exc).__name__])[0]
    return text[:300]


def default_inference_precision(manifest: dict) -> str:
    """The precision a bundle was exported and checked at: the manifest's ``openvino.inference_precision``,
    else derived from the bundle precision ('fp32' → 'f32', 'int8' → 'f32', 'fp16' → 'f16'; unknown → 'f32')."""
    recorded = (manifest.get("openvino") or {}).get("inference_precision")
    if recorded in INFERENCE_PRECISIONS:
        return recorded
    return DEFAULT_INFERENCE_PRECISION.get(manifest.get("precision", "fp32"), "f32")


def check_device(device: object) -> str:
    """Validate a device string: CPU, GPU, GPU.1, NPU, AUTO, AUTO:GPU,CPU, MULTI:..., HETERO:..."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ConfigError(f"device must be one of {', '.join(PHYSICAL_DEVICES + VIRTUAL_DEVICES)} "
                          f"(optionally GPU.1, AUTO:GPU,CPU), got {device!r}")
    return device


def _choice(value: object, allowed, what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value  # type: ignore[return-value]


class OpenVINORuntime(Runtime):
    """OpenVINO runtime over one model file (``.xml`` IR or ``.onnx``).

    Options: ``device`` ('CPU', 'GPU', 'NPU', 'AUTO', ...), ``threads`` (INFERENCE_NUM_THREADS, CPU only),
    ``hint`` ('latency' | 'throughput': PERFORMANCE_HINT), ``inference_precision`` ('f32' | 'bf16' |
    'f16' | 'auto'; None = the bundle's own, 'f32' for fp32 bundles).
    """

    backend = "openvino"

    def __init__(self, model_path: str | Path, spec: ModelSpec, *, device: str = "CPU", threads: int | None = None,
                 hint: str = "latency", inference_precision: str | None = None, default_precision: str = "f32"):
        super().__init__(spec)
        self.model_path = Path(model_path)
        self.device = check_device(device)
        self.threads = check_threads(threads)
        self.hint = _choice(hint, tuple(HINTS), "hint")
        self._precision_explicit = inference_precision is not None
        asked = default_precision if inference_precision is None else inference_precision
        self.inference_precision = _choice(asked, INFERENCE_PRECISIONS, "inference_precision")
        self.effective_precision: str | None = None
        self.compiled = None
        self.request = None

    @classmethod
    def from_bundle(cls, bundle, **options) -> OpenVINORuntime:
        """Runtime over an 'openvino' (IR) or 'onnx' bundle; options as in the class docstring."""
        for key in options:
            if key not in OPTIONS:
                raise suggest(key, OPTIONS, "openvino runtime option")
        return cls(bundle.model_path, bundle.spec(), default_precision=default_inference_precision(bundle.manifest),
                   **options)

    # ---- lifecycle -------------------------------------------------------------------------
    def load_impl(self) -> None:
        ov = require("openvino", "the openvino backend")
        core = ov.Core()
        self._check_present(core)
        try:
            model = core.read_model(str(self.model_path))
        except Exception as exc:  # noqa: BLE001 — OpenVINO's GeneralFailure etc. derive from Exception only
            raise BundleError(f"OpenVINO cannot read {self.model_path}: {ov_message(exc)}") from None
        config = self._config(core)
        try:
            self.compiled = core.compile_model(model, self.device, config)
        except Exception as exc:  # noqa: BLE001 — as above
            raise ConfigError(f"OpenVINO cannot compile {self.model_path.name} for device {self.device!r} "
                              f"with {config}: {ov_message(exc)}") from None
        self.request = self.compiled.create_infer_request()
        self.effective_precision = self._query_precision()
        self._warn_precision()

    def close_impl(self) -> None:
        self.request = None
        self.compiled = None

    def _check_present(self, core) -> None:
        """Every physical device named in ``self.device`` must be one OpenVINO sees here."""
        available = list(core.available_devices)
        head, _, rest = self.device.partition(":")
        wanted = [head] if head in PHYSICAL_DEVICES or "." in head else []
        wanted += [d for d in rest.split(",") if d]
        for dev in wanted:
            if dev not in available and not any(a.split(".")[0] == dev for a in available):
                raise ConfigError(f"OpenVINO device {dev!r} is not available here; available devices: "
                                  f"{', '.join(available) or 'none'} (device={self.device!r})")

    def _config(self, core) -> dict:
        """Compile properties; on a physical device, ones it does not support are an error when the caller
        set them and dropped when they are defaults."""
        config: dict = {"PERFORMANCE_HINT": HINTS[self.hint]}
        explicit = {"PERFORMANCE_HINT": False}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"], explicit["INFERENCE_NUM_THREADS"] = self.threads, True
        if self.inference_precision != "auto":
            config["INFERENCE_PRECISION_HINT"] = self.inference_precision
            explicit["INFERENCE_PRECISION_HINT"] = self._precision_explicit
        head = self.device.partition(":")[0]
        if head.split(".")[0] not in PHYSICAL_DEVICES:
            return config  # AUTO/MULTI/HETERO pass properties on to the devices they choose
        supported = core.get_property(head, "SUPPORTED_PROPERTIES")
        for key in list(config):
            if key not in supported:
                if explicit[key]:
                    raise ConfigError(f"OpenVINO device {head!r} does not support {key} "
                                      f"(set by the {_OPTION_OF[key]!r} option)")
                del config[key]
        return config

    def _query_precision(self) -> str | None:
        try:
            return self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        except Exception:  # noqa: BLE001 — virtual devices (AUTO) do not report it
            return None

    def _warn_precision(self) -> None:
        asked, got = self.inference_precision, self.effective_precision
        if asked != "auto" and got is not None and got != asked:
            warnings.warn(f"OpenVINO on {self.device} computes in {got}, not the requested {asked} "
                          "(the device lacks it); outputs will differ from fp32 more than usual",
                          RuntimeWarning, stacklevel=3)

    def runtime_precisions(self, layer_types: tuple[str, ...] | None = None) -> dict[str, int]:
        """What the compiled model really runs: {runtime precision: layer count}, e.g. {'u8': 56, 'f32': 1},
        over the executed layers of ``layer_types`` (e.g. ('Convolution',); None: every layer)."""
        self._require_loaded("runtime_precisions")
        counts: dict[str, int] = {}
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if "runtimePrecision" not in info or "layerType" not in info:
                continue
            if layer_types is not None and str(info["layerType"].astype(str)) not in layer_types:
                continue
            precision = str(info["runtimePrecision"].astype(str))
            counts[precision] = counts.get(precision, 0) + 1
        return dict(sorted(counts.items()))

    # ---- inference ---------------------------------------------------------------------------
    def input_metadata_impl(self) -> dict[str, tuple[tuple, str]]:
        port = self.compiled.inputs[0]
        shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
        return {port.get_any_name(): (shape, np.dtype(port.get_element_type().to_dtype()).name)}

    def infer_impl(self, tensor: np.ndarray) -> list[np.ndarray]:
        # synchronous call: the input may be shared; outputs are copied out of the request's buffers
        result = self.request.infer({0: np.ascontiguousarray(tensor)}, share_inputs=True, share_outputs=False)
        return [result[port] for port in self.compiled.outputs]

__all__ = ["OpenVINORuntime", "available_devices", "check_device", "default_inference_precision",
           "is_available", "ov_message"]
