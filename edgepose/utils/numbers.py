"""One rule for "a number" in user input (JSON files, manifests, options): int or float, never a bool."""

from __future__ import annotations

import math
import numbers


def is_number(value: object, *, finite: bool = True) -> bool:
    """True for a real number that is not a bool (and, with ``finite``, not NaN / infinite; an int too large for
    a float counts as infinite). numpy scalars count; strings never do."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if not finite:
        return True
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False
