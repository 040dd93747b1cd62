"""edgepose's own exception types.

Every error names what was received and what was expected or available, in one line, so that the
CLI can print ``error: <message>`` and exit with a non-zero code without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgeposeError(Exception):
    """Base class of every error edgepose raises on purpose (the CLI prints these as one line)."""

    exit_code = 2


class ConfigError(EdgeposeError, ValueError):
    """A user argument or option is invalid (unknown name, wrong range, wrong type)."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup missed; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataError(EdgeposeError, ValueError):
    """A dataset, annotation file, image or calibration source is missing, corrupt or empty."""


class CheckpointError(EdgeposeError, ValueError):
    """A checkpoint cannot be loaded safely or does not fit the model."""


class ConvertError(EdgeposeError, ValueError):
    """A foreign model file (e.g. a TensorFlow.js graph model) cannot be converted: malformed, truncated,
    or holding weights that do not fit the PyTorch model."""


class BundleError(EdgeposeError, ValueError):
    """A deployment bundle is missing, tampered with, or from an unsupported schema version."""


class BackendUnavailable(EdgeposeError, ImportError):
    """A backend package is not installed; the message names the pip extra to install."""


class ExportError(EdgeposeError, RuntimeError):
    """Export failed, including a parity gate that refused to write a bundle."""


class AccuracyGateFailed(ExportError):
    """A quantized model lost more accuracy than allowed."""


class VerificationFailed(EdgeposeError, RuntimeError):
    """A bundle's golden samples do not reproduce on this device (``edgepose verify``)."""


class InputError(EdgeposeError, ValueError):
    """A runtime input (image, boxes, tensor) does not match what the model expects."""


class OutputError(EdgeposeError, OSError):
    """An output file cannot be created or written (a full disk, a folder that refuses writes)."""


def suggest(name: str, choices: Iterable[str], what: str) -> UnknownNameError:
    """Build an ``UnknownNameError`` for ``name`` with close-match suggestions from ``choices``."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(f"unknown {what} {name!r}{hint} (available: {', '.join(choices)})")
