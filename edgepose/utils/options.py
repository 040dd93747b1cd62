"""Option checks shared by the CLI, the runtimes, bench, training and device profiles (standard library only)."""

from __future__ import annotations

import numbers

from edgepose.errors import ConfigError


def check_threads(value, name: str = "threads") -> int | None:
    """The one thread-count rule: None (the backend's / torch's default: all physical cores) or an integer >= 1.

    Returns ``value`` as an int; a ConfigError in one line otherwise (``name``: ``threads`` or ``--threads``).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be >= 1 (an integer; unset or None: the default), got {value!r}")
    return int(value)
