"""TensorRT build settings — the content of a bundle's ``build.json`` (pure Python, no TensorRT import).

Precision → builder flags:

- ``fp32``: no precision flag, TF32 disabled (TensorRT enables TF32 by default on Ampere and newer, which
  would break fp32 parity);
- ``fp16``: ``FP16``;
- ``int8``: explicit quantization from a Q/DQ ONNX — ``INT8`` + ``FP16`` (layers without Q/DQ run in fp16),
  no calibrator.

The optimization profile gives (min, opt, max) shapes for the input, NCHW: a static-batch ONNX gets
min = opt = max = (1, C, H, W); a dynamic-batch ONNX gets (1, opt_batch, max_batch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgepose.errors import BundleError, ConfigError

BUILD_FILE = "build.json"
PRECISION_FLAGS = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}
# trt.BuilderFlag members a build.json may name (TensorRT 10; STRICT_TYPES and the like are gone)
KNOWN_FLAGS = ("FP16", "INT8", "BF16", "FP8", "SPARSE_WEIGHTS", "OBEY_PRECISION_CONSTRAINTS",
               "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "REFIT", "GPU_FALLBACK")


@dataclass
class BuildSettings:
    """How the engine is built. ``profile``: {input name: {"min": [...], "opt": [...], "max": [...]}}."""

    precision: str
    profile: dict
    flags: list = field(default_factory=list)
    tf32: bool = False
    explicit_quantization: bool = False
    workspace_mib: int = 1024
    builder_optimization_level: int = 3
    dla_core: int | None = None
    timing_cache: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISION_FLAGS:
            raise ConfigError(f"TensorRT precision must be one of {tuple(PRECISION_FLAGS)}, got {self.precision!r}")
        if not self.flags:
            self.flags = list(PRECISION_FLAGS[self.precision])
        self.explicit_quantization = self.explicit_quantization or self.precision == "int8"
        if not isinstance(self.workspace_mib, int) or self.workspace_mib < 16:
            raise ConfigError(f"workspace_mib must be an integer >= 16, got {self.workspace_mib!r}")
        if self.builder_optimization_level not in range(6):
            raise ConfigError(f"builder_optimization_level must be 0..5, got {self.builder_optimization_level!r}")
        if self.dla_core is not None and (not isinstance(self.dla_core, int) or self.dla_core < 0):
            raise ConfigError(f"dla_core must be None or an integer >= 0, got {self.dla_core!r}")
        if self.dla_core is not None and self.precision == "fp32":
            raise ConfigError("a DLA core runs FP16 / INT8 only; expected precision fp16 or int8 with dla_core")
        unknown = [f for f in self.flags if f not in KNOWN_FLAGS]
        if unknown:
            raise ConfigError(f"builder flag(s) {unknown} are not TensorRT 10 flags edgepose sets; expected some of "
                              f"{', '.join(KNOWN_FLAGS)}")
        check_profile(self.profile)

    @property
    def dynamic_batch(self) -> bool:
        return any(p["min"][0] != p["max"][0] for p in self.profile.values())

    @property
    def max_batch(self) -> int:
        return min(int(p["max"][0]) for p in self.profile.values())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BuildSettings:
        if not isinstance(d, dict):
            raise BundleError(f"{BUILD_FILE} holds {type(d).__name__}, expected a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise BundleError(f"{BUILD_FILE} has unknown keys {unknown}; this edgepose knows {sorted(known)} "
                              "(upgrade edgepose?)")
        try:
            return cls(**d)
        except (TypeError, ConfigError) as exc:
            raise BundleError(f"{BUILD_FILE} is invalid: {exc}") from None


def check_profile(profile: dict) -> None:
    """Every input has min <= opt <= max, element-wise, all of the same rank, all dims >= 1."""
    if not isinstance(profile, dict) or not profile:
        raise ConfigError(f"optimization profile must map input names to min/opt/max shapes, got {profile!r}")
    for name, p in profile.items():
        if not isinstance(p, dict) or set(p) != {"min", "opt", "max"}:
            raise ConfigError(f"profile for {name!r} must have exactly min, opt, max; got {p!r}")
        lo, opt, hi = (list(p[k]) for k in ("min", "opt", "max"))
        if not (len(lo) == len(opt) == len(hi)) or not all(isinstance(v, int) and v >= 1 for v in lo + opt + hi):
            raise ConfigError(f"profile for {name!r} needs three shapes of equal rank with dims >= 1, got {p!r}")
        if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
            raise ConfigError(f"profile for {name!r} needs min <= opt <= max in every dim, got {p!r}")


def make_profile(input_name: str, shape: tuple, *, opt_batch: int = 4, max_batch: int = 16) -> dict:
    """Profile from an ONNX input shape whose batch dim is an int (static) or None (dynamic); other dims fixed."""
    if len(shape) < 2 or any(not isinstance(d, int) or d < 1 for d in shape[1:]):
        raise ConfigError(f"TensorRT needs fixed non-batch input dims, got {input_name!r} shape {tuple(shape)}")
    rest = [int(d) for d in shape[1:]]
    if shape[0] is not None:
        fixed = [int(shape[0]), *rest]
        return {input_name: {"min": fixed, "opt": list(fixed), "max": list(fixed)}}
    if not 1 <= opt_batch <= max_batch:
        raise ConfigError(f"need 1 <= opt_batch <= max_batch, got opt_batch={opt_batch}, max_batch={max_batch}")
    return {input_name: {"min": [1, *rest], "opt": [opt_batch, *rest], "max": [max_batch, *rest]}}
