"""The options of :func:`edgepose.export`: enums for the closed choices, two dataclasses for the knobs.

``Precision``, ``DecodePlace`` and ``CalibMethod`` are str-valued enums: ``Precision.INT8 == "int8"``, they
write themselves into JSON manifests as their value, and every call that passes plain strings keeps working.
``QuantOptions`` (calibration data and the accuracy gate of a non-fp32 export) and ``ParityOptions`` (the
fp32 parity gate) check their fields once, when made: a bad value is a one-line ConfigError naming what was
received and what was expected.

>>> from edgepose.export import CalibMethod, ParityOptions, QuantOptions
>>> quant = QuantOptions(calib="synthetic:128", method=CalibMethod.PERCENTILE, max_ap_drop=1.5)
>>> edgepose.export(model, target="onnx", precision="int8", quant=quant, out="bundles/int8")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from edgepose.errors import ConfigError


class _StrEnum(str, Enum):
    """A str whose value is the option's name in manifests and on the command line (Python 3.10's enum.StrEnum)."""

    __hash__ = str.__hash__  # Precision.INT8 finds "int8" in a dict or set, and the other way round

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def coerce(cls, value, what: str):
        """``value`` (a member or its string) as a member; ConfigError naming the choices otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"{what} {value!r}: expected one of {', '.join(m.value for m in cls)}") from None


class Precision(_StrEnum):
    """Numeric precision of the deployed model."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class DecodePlace(_StrEnum):
    """Where keypoints are decoded: inside the exported graph, on the host in numpy, or the target's choice."""

    AUTO = "auto"
    GRAPH = "graph"
    HOST = "host"


class CalibMethod(_StrEnum):
    """How INT8 activation ranges are taken from the calibration data (where the target offers a choice)."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"


def _count(value, what: str, flag: str = "", *, none: bool = True) -> None:
    if (value is None and not none) or (value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                                               or value < 1)):
        raise ConfigError(f"{what}={value!r}{flag}: expected an integer >= 1{' or None' if none else ''}")


def _flag(value, what: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{what}={value!r}: expected True or False")


def _number(value, what: str, expected: str, ok, flag: str = "") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not ok(number):
        raise ConfigError(f"{what}={value!r}{flag}: expected {expected}")
    return number


@dataclass
class QuantOptions:
    """Calibration data and accuracy gate of a non-fp32 export (see :func:`edgepose.export`).

    ``calib``: a :class:`~edgepose.calibration.CalibrationSet` or a source (image folder, video, folder of
    videos, COCO json, ``synthetic[:N]``, or a list of these), ``calib_size`` samples of it (None: 128).
    ``val``: labelled data, or unlabelled frames for the label-free gate (``val_size`` frames, None: 100).
    The gate refuses a bundle that loses more than ``max_ap_drop`` OKS AP points against fp32, unless
    ``allow_accuracy_drop``; ``auto_mixed`` keeps the layers INT8 hurts most in float until it passes, ranked
    on ``sensitivity_samples`` calibration samples. ``int8_modules``: the PyTorch modules INT8 quantizes, the rest
    staying float (a name, a list, or "all"; None: the model's own ``int8_modules``, else all; see
    :mod:`edgepose.export.int8_scope`).
    """

    calib: Any = None
    calib_size: int | None = None
    method: CalibMethod | str = CalibMethod.MINMAX
    val: Any = None
    val_size: int | None = None
    max_ap_drop: float = 1.0
    auto_mixed: bool = False
    allow_accuracy_drop: bool = False
    sensitivity_samples: int = 8
    int8_modules: Any = None

    def __post_init__(self) -> None:
        self.method = CalibMethod.coerce(self.method, "calibration method")
        _count(self.calib_size, "calib_size", " (--calib-size)")
        _count(self.val_size, "val_size", " (--val-size)")
        _count(self.sensitivity_samples, "sensitivity_samples", none=False)
        self.max_ap_drop = _number(self.max_ap_drop, "max_ap_drop", "AP points >= 0 (1.0 = 0.01 AP)", lambda v: v >= 0,
                                   " (--max-ap-drop)")
        _flag(self.auto_mixed, "auto_mixed")
        _flag(self.allow_accuracy_drop, "allow_accuracy_drop")


@dataclass
class ParityOptions:
    """The fp32 parity gate: the bundle on its backend against PyTorch on the parity samples.

    ``rel_tol``: largest relative error of the outputs; ``px_tol``: largest keypoint distance in input pixels
    (joints whose decode is ill-conditioned are counted, not compared). ``enabled=False`` skips the gate.
    """

    enabled: bool = True
    rel_tol: float = 1e-4
    px_tol: float = 0.1

    def __post_init__(self) -> None:
        _flag(self.enabled, "parity enabled")
        self.rel_tol = _number(self.rel_tol, "rel_tol", "a relative error > 0", lambda v: v > 0)
        self.px_tol = _number(self.px_tol, "px_tol", "a keypoint distance in px >= 0", lambda v: v >= 0)


# the flat keywords export() took before the option objects: keyword → (option class, field)
FLAT_KEYWORDS = {
    "calib": (QuantOptions, "calib"), "calib_size": (QuantOptions, "calib_size"),
    "calib_method": (QuantOptions, "method"), "val": (QuantOptions, "val"), "val_size": (QuantOptions, "val_size"),
    "max_ap_drop": (QuantOptions, "max_ap_drop"), "auto_mixed": (QuantOptions, "auto_mixed"),
    "allow_accuracy_drop": (QuantOptions, "allow_accuracy_drop"), "int8_modules": (QuantOptions, "int8_modules"),
    "rel_tol": (ParityOptions, "rel_tol"), "px_tol": (ParityOptions, "px_tol"),
}


def resolve_options(quant: QuantOptions | None, parity: ParityOptions | bool | None,
                    flat: dict[str, Any]) -> tuple[QuantOptions, ParityOptions]:
    """The one place that folds export()'s flat keywords (``calib=``, ``rel_tol=``, ``parity=True``, ...) into the
    option objects. A flat keyword next to the object it belongs in is a ConfigError: one value, one place."""
    if quant is not None and not isinstance(quant, QuantOptions):
        raise ConfigError(f"quant={quant!r}: expected a QuantOptions or None")
    if parity is not None and not isinstance(parity, (ParityOptions, bool)):
        raise ConfigError(f"parity={parity!r}: expected a ParityOptions, True, False or None")
    given: dict[type, dict[str, Any]] = {QuantOptions: {}, ParityOptions: {}}
    for key, value in flat.items():
        cls, name = FLAT_KEYWORDS[key]
        given[cls][name] = value
    objects = {QuantOptions: quant, ParityOptions: parity if isinstance(parity, ParityOptions) else None}
    for cls, values in given.items():
        if values and objects[cls] is not None:
            keys = ", ".join(f"{k}=" for k, (c, _) in FLAT_KEYWORDS.items() if c is cls and k in flat)
            arg = "quant" if cls is QuantOptions else "parity"
            raise ConfigError(f"{keys} given together with {arg}={cls.__name__}(...); expected each option in one "
                              f"place: set it on the {cls.__name__}")
    if isinstance(parity, bool):
        given[ParityOptions]["enabled"] = parity
    return (quant or QuantOptions(**given[QuantOptions]),
            objects[ParityOptions] or ParityOptions(**given[ParityOptions]))

