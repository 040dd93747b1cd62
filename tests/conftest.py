"""Shared fixtures: paths to ../shared/data, a per-session cache for generated data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_MODELS = REPO.parent / "shared" / "models"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA} (expected the shared/ folder beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory) -> Path:
    """Generated data goes to a session temp dir unless EDGEPOSE_CACHE is set by the caller."""
    if not os.environ.get("EDGEPOSE_CACHE"):
        os.environ["EDGEPOSE_CACHE"] = str(tmp_path_factory.mktemp("edgepose-cache"))
    os.environ.setdefault("EDGEPOSE_NO_PROGRESS", "1")
    return Path(os.environ["EDGEPOSE_CACHE"])


# The groups `make test`'s two workers take (by module, or class), heaviest first — serial durations measured on the
# 2-core host (docs/benchmarks.md, "The test suite after the heads issue"). pytest-xdist's --dist loadscope hands out
# groups in collection order, so putting the long ones first keeps one worker from finishing a long group alone
# at the end. Everything else keeps its order, after these.
HEAVY_FIRST = (
    "tests/export/test_conformance.py::TestTFLite",
    "tests/quantization/test_tflite_int8.py",
    "tests/export/test_conformance.py::TestOpenVINO",
    "tests/export/test_conformance.py::TestOnnx",
    "tests/profiling/test_bench.py",
    "tests/demo/test_demo.py",
    "tests/runtimes/test_tflite.py",
    "tests/quantization/test_openvino_int8.py",
    "tests/calibration/test_int8_export.py",
    "tests/pipeline/test_run.py",
    "tests/heads/test_simcc.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        return next((i for i, group in enumerate(HEAVY_FIRST) if item.nodeid.startswith(group)), len(HEAVY_FIRST))

    items[:] = sorted(items, key=rank)  # stable: each group stays contiguous and in its own order
