"""Shared fixtures: paths to ../shared/data, a per-session cache for generated data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_MODELS = REPO.parent / "shared" / "models"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest-xdist worker per core: each works with one thread (torch and every process a test
    # starts). With torch's default of one thread per core, two workers ran four threads on two cores and spun:
    # tests/models + tests/heads took 136 s so, 60 s with one thread each (docs/benchmarks.md).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA} (expected the shared/ folder beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory) -> Path:
    """Generated data and converted models go to a session temp dir unless EDGEPOSE_CACHE is set by the caller."""
    if not os.environ.get("EDGEPOSE_CACHE"):
        # pytest-xdist workers share one folder (their base temp folders are siblings under the run's): a synthetic
        # set one worker generated or a model it converted, the other reuses (both caches write atomically)
        base = tmp_path_factory.getbasetemp()
        root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        (root / "edgepose-cache").mkdir(exist_ok=True)
        os.environ["EDGEPOSE_CACHE"] = str(root / "edgepose-cache")
    os.environ.setdefault("EDGEPOSE_NO_PROGRESS", "1")
    # the same model converts to TFLite once per session (edgepose.export.convert_cache); EDGEPOSE_CONVERT_CACHE=0
    # makes every export convert
    os.environ.setdefault("EDGEPOSE_CONVERT_CACHE", "1")
    return Path(os.environ["EDGEPOSE_CACHE"])
