"""Calibration data, accuracy gate and sensitivity-driven mixed precision for INT8 export (workstation side)."""

from __future__ import annotations

__all__ = ["CalibrationSet"]


def __getattr__(name: str):
    if name == "CalibrationSet":
        from edgepose.calibration.dataset import CalibrationSet

        return CalibrationSet
    raise AttributeError(f"module 'edgepose.calibration' has no attribute {name!r}")
