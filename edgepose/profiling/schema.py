"""The benchmark report schema (``edgepose.bench``, version 1): constants, a validator and the stage statistics.

One document holds the devices a benchmark ran on and one result per benchmarked model::

    {"schema": "edgepose.bench", "schema_version": 1, "edgepose_version": "0.1.0",
     "created": "2026-11-25T23:59:00+00:00", "command": "edgepose bench ...",
     "devices": {DEVICE_ID: {"label": ..., "cpu_model": ..., "versions": {pkg: version}, ...}},
     "results": [{"name": ..., "device": DEVICE_ID, "role": "bundle" | "baseline" | "foreign",
                  "stages": {stage: STATS}, "samples_ms": {stage: [ms, ...]}, "fps": ...,
                  "accuracy": None | {"AP": ..., "ap_drop": ..., ...}, ...}]}

``STATS`` is ``{"p50", "p90", "p99", "mean", "std", "min", "max"}`` in milliseconds (see :func:`percentiles`).
A merged report (``edgepose.profiling.report.merge``) has several devices and a ``"merged_from"`` list.
Only numpy is imported here: the bench loop on a device uses :func:`percentiles` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from edgepose.errors import ConfigError
from edgepose.utils.numbers import is_number

SCHEMA = "edgepose.bench"
SCHEMA_VERSION = 1

STAGES = ("preprocess", "inference", "decode", "total")
STAT_KEYS = ("p50", "p90", "p99", "mean", "std", "min", "max")
ROLES = ("bundle", "baseline", "foreign")
PRECISIONS = ("fp32", "fp16", "int8")

TOP_KEYS = ("schema", "schema_version", "edgepose_version", "created", "command", "devices", "results")
DEVICE_KEYS = ("label",)
RESULT_KEYS = ("name", "device", "bundle", "model", "kind", "target", "backend", "precision", "input_size", "role",
               "threads", "batch", "runs", "warmup", "stages", "samples_ms", "fps", "peak_rss_mb", "model_size_mb",
               "accuracy")
ACCURACY_KEYS = ("AP",)


def _missing(obj: Mapping, keys: Iterable[str]) -> list[str]:
    return [k for k in keys if k not in obj]


def _check_header(doc: object, source: str) -> dict:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: received a JSON {type(doc).__name__}; expected an object with "
                          f"schema {SCHEMA!r}")
    if doc.get("schema") != SCHEMA:
        raise ConfigError(f"{source}: received schema {doc.get('schema')!r}; expected {SCHEMA!r} "
                          "(is this an edgepose benchmark report?)")
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
        raise ConfigError(f"{source}: written by schema version {version!r}; this edgepose reads version "
                          f"{SCHEMA_VERSION}")
    missing = _missing(doc, TOP_KEYS)
    if missing:
        raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}; expected {', '.join(TOP_KEYS)}")
    if not isinstance(doc["devices"], dict):
        raise ConfigError(f"{source}: 'devices' is a {type(doc['devices']).__name__}; expected an object "
                          "{device id: fingerprint}")
    if not isinstance(doc["results"], list):
        raise ConfigError(f"{source}: 'results' is a {type(doc['results']).__name__}; expected a list")
    for dev_id, fp in doc["devices"].items():
        if not isinstance(fp, dict) or _missing(fp, DEVICE_KEYS):
            raise ConfigError(f"{source}: device {dev_id!r} received {fp!r:.80}; expected a fingerprint object "
                              f"with at least {', '.join(DEVICE_KEYS)}")
    return doc


def _check_stats(where: str, field: str, stages: object, keys: Iterable[str] | None) -> None:
    if not isinstance(stages, dict):
        raise ConfigError(f"{where}: {field!r} is a {type(stages).__name__}; expected an object with the stages "
                          f"{', '.join(STAGES)}")
    missing = _missing(stages, STAGES)
    if missing:
        raise ConfigError(f"{where}: {field!r} lacks stage(s) {', '.join(missing)}; expected {', '.join(STAGES)}")
    for stage in STAGES:
        value = stages[stage]
        if keys is None:
            if not isinstance(value, list):
                raise ConfigError(f"{where}: {field}.{stage} is a {type(value).__name__}; expected a list of ms")
            if not all(is_number(x) for x in value):
                raise ConfigError(f"{where}: {field}.{stage} holds a non-number; expected a list of ms")
        elif not isinstance(value, dict) or _missing(value, keys):
            raise ConfigError(f"{where}: {field}.{stage} received {value!r:.80}; expected {', '.join(keys)}")
        elif not all(is_number(value[k]) for k in keys):
            raise ConfigError(f"{where}: {field}.{stage} received {value!r:.80}; expected numbers for "
                              f"{', '.join(keys)}")


def _check_result(i: int, res: object, devices: Mapping, source: str) -> None:
    where = f"{source}: results[{i}]"
    if not isinstance(res, dict):
        raise ConfigError(f"{where} is a {type(res).__name__}; expected an object")
    where = f"{where} ({res.get('name', '?')})"
    missing = _missing(res, RESULT_KEYS)
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    if res["device"] not in devices:
        raise ConfigError(f"{where}: device {res['device']!r} is not in 'devices'; available: "
                          f"{', '.join(map(str, devices)) or 'none'}")
    if res["role"] not in ROLES:
        raise ConfigError(f"{where}: role {res['role']!r}; expected one of {', '.join(ROLES)}")
    for key in ("threads", "batch", "runs", "warmup"):
        if isinstance(res[key], bool) or not isinstance(res[key], int):
            raise ConfigError(f"{where}: {key!r} received {res[key]!r:.40}; expected an integer")
    for key, nullable in (("fps", False), ("peak_rss_mb", True), ("model_size_mb", True)):
        if not (is_number(res[key]) or (nullable and res[key] is None)):
            raise ConfigError(f"{where}: {key!r} received {res[key]!r:.40}; expected a number"
                              f"{' or null' if nullable else ''}")
    _check_stats(where, "stages", res["stages"], STAT_KEYS)
    _check_stats(where, "samples_ms", res["samples_ms"], None)
    acc = res["accuracy"]
    if acc is not None and (not isinstance(acc, dict) or _missing(acc, ACCURACY_KEYS)):
        raise ConfigError(f"{where}: accuracy received {acc!r:.80}; expected null or an object with 'AP'")


def validate(doc: object, source: str = "benchmark report") -> dict:
    """Check that ``doc`` is an ``edgepose.bench`` version-1 document and return it unchanged.

    Raises :class:`~edgepose.errors.ConfigError` (one line naming ``source``, what was received and what was
    expected) for a non-object, another schema, another schema version, missing keys, or a result whose
    device id is not among ``doc["devices"]``.
    """
    doc = _check_header(doc, source)
    for i, res in enumerate(doc["results"]):
        _check_result(i, res, doc["devices"], source)
    return doc


def percentiles(samples: Iterable[float]) -> dict[str, float]:
    """Summary statistics of per-run times in ms: p50/p90/p99 (numpy linear interpolation), mean, std, min, max.

    ``std`` is the population standard deviation (ddof=0), so one sample gives 0 rather than NaN.
    """
    arr = np.asarray(list(samples) if not isinstance(samples, np.ndarray) else samples, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ConfigError("percentiles: received no samples; expected at least one timed run")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"percentiles: received {int(np.sum(~np.isfinite(arr)))} non-finite sample(s); "
                          "expected finite times in ms")
    p50, p90, p99 = np.percentile(arr, [50, 90, 99], method="linear")
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(arr.mean()),
            "std": float(arr.std()), "min": float(arr.min()), "max": float(arr.max())}
