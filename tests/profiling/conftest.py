"""A realistic synthetic ``edgepose.bench`` document, built in-process from seeded samples."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edgepose.profiling.schema import SCHEMA, SCHEMA_VERSION, percentiles

DEVICE = "amd-epyc-7b13-2c"
FINGERPRINT = {
    "label": "AMD EPYC 7B13 · 2 cores · x86_64", "cpu_model": "AMD EPYC 7B13", "isa": ["avx2", "fma", "avx512f"],
    "cores_logical": 2, "cores_physical": 1, "cores_usable": 2, "os": "Linux 6.1.0 (Debian 12)", "machine": "x86_64",
    "python": "3.12.3", "jetson": None, "raspberry_pi": None, "gpu": None, "profile": None,
    "versions": {"edgepose": "0.1.0", "numpy": "2.4.6", "onnxruntime": "1.20.1", "openvino": "2025.1.0",
                 "torch": "2.13.0"},
}
# (model, kind, target, backend, precision, role, inference ms, decode ms, accuracy)
RESULTS = [
    ("simplebaseline-mnv2s-edge", "heatmap", "pytorch", "torch", "fp32", "baseline", 38.0, 0.9, None),
    ("simplebaseline-mnv2s-edge", "heatmap", "onnx", "onnxruntime", "fp32", "bundle", 11.5, 0.9,
     {"AP": 71.4, "ap_drop": 0.0, "ap_reference": 71.4, "source": "manifest gate"}),
    ("simplebaseline-mnv2s-edge", "heatmap", "onnx", "onnxruntime", "int8", "bundle", 5.2, 0.9,
     {"AP": 70.3, "ap_drop": 1.1, "ap_reference": 71.4, "source": "manifest gate"}),
    ("centernet-mnv2s", "centernet", "openvino", "openvino", "fp16", "bundle", 19.0, 0.01, None),
]


def _samples(rng: np.random.Generator, median: float, runs: int) -> np.ndarray:
    """Right-skewed run times around ``median`` ms with a few slow outliers."""
    x = median * rng.lognormal(0.0, 0.06, runs)
    spikes = rng.random(runs) < 0.03
    x[spikes] *= rng.uniform(1.5, 3.0, int(spikes.sum()))
    return x


def _result(rng: np.random.Generator, spec: tuple, device: str, runs: int) -> dict:
    model, kind, target, backend, precision, role, inf_ms, dec_ms, acc = spec
    samples = {"preprocess": _samples(rng, 0.8, runs), "inference": _samples(rng, inf_ms, runs),
               "decode": _samples(rng, dec_ms, runs)}
    samples["total"] = samples["preprocess"] + samples["inference"] + samples["decode"] + 0.05
    stages = {k: percentiles(v) for k, v in samples.items()}
    return {
        "name": f"{model} · {target} · {precision}", "device": device, "bundle": f"/tmp/bundles/{model}-{target}",
        "model": model, "kind": kind, "target": target, "backend": backend, "precision": precision,
        "input_size": [192, 256] if kind == "heatmap" else [320, 320], "role": role, "threads": 2, "batch": 1,
        "runs": runs, "warmup": 10, "stages": stages,
        "samples_ms": {k: [round(float(s), 4) for s in v] for k, v in samples.items()},
        "fps": 1000.0 / stages["total"]["p50"], "peak_rss_mb": float(rng.uniform(180, 420)),
        "model_size_mb": None if target == "pytorch" else (2.1 if precision == "int8" else 7.9),
        "accuracy": copy.deepcopy(acc),
    }


def make_bench_doc(*, seed: int = 0, device: str = DEVICE, fingerprint: dict | None = None, runs: int = 100,
                   specs: list | None = None) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgepose_version": "0.1.0",
        "created": "2026-11-25T23:59:00+00:00", "command": "edgepose bench bundles/ --threads 2 --runs 100",
        "devices": {device: copy.deepcopy(fingerprint or FINGERPRINT)},
        "results": [_result(rng, s, device, runs) for s in (specs or RESULTS)],
    }


@pytest.fixture()
def bench_doc() -> dict:
    return make_bench_doc()


@pytest.fixture()
def make_doc():
    """The factory, for tests that need a second device or other results."""
    return make_bench_doc
