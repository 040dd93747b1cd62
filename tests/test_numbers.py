"""The one "is this a number" rule for user input."""

from __future__ import annotations

import numpy as np

from edgepose.utils.numbers import is_number


def test_is_number():
    assert is_number(1) and is_number(0.5) and is_number(np.float32(2.0)) and is_number(np.int64(3))
    assert not any(is_number(v) for v in (True, "1", None, [1], float("nan"), float("inf"), 10**400))
    assert is_number(float("nan"), finite=False) and is_number(10**400, finite=False)
    assert not is_number(False, finite=False) and not is_number("1", finite=False)
