"""Plan and run a benchmark: bundles × thread counts (+ PyTorch baselines), one fresh process per job.

A fresh process per job keeps the numbers honest: peak RSS is that bundle's alone, and one backend's thread
pool (or PyTorch's global thread setting) cannot leak into the next measurement. ``isolate=False`` runs the
jobs in this process instead (faster, for tests of the loop itself; RSS is then the process's).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from edgepose.errors import ConfigError, EdgeposeError

BASELINES = ("torch",)


def parse_threads(text: str | int | list) -> list[int]:
    """'1,2,4' → [1, 2, 4]; every count must be a positive integer."""
    items = text if isinstance(text, list) else str(text).split(",")
    out = []
    for item in items:
        try:
            n = int(str(item).strip())
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"--threads {text!r}: expected positive integers separated by commas, e.g. 1,2,4")
        out.append(n)
    return list(dict.fromkeys(out))


def check_counts(*, runs: int, warmup: int, batch: int) -> None:
    if runs < 1:
        raise ConfigError(f"--runs {runs}: expected at least 1 timed run")
    if warmup < 0:
        raise ConfigError(f"--warmup {warmup}: expected 0 or more warm-up runs")
    if batch < 1:
        raise ConfigError(f"--batch {batch}: expected at least 1 person crop per frame")


def plan_jobs(bundles: list[str], *, threads: list[int], runs: int, warmup: int, batch: int,
              image: str | None = None, baseline: str | None = None, baseline_weights: str | None = None,
              backend: str | None = None) -> list[dict]:
    """Validate every bundle up front (missing, corrupt, tampered → BundleError before any timing; a backend
    that is not installed → BackendUnavailable naming the pip extra)."""
    from edgepose.bundle import read_bundle
    from edgepose.errors import BackendUnavailable, suggest
    from edgepose.runtimes import BACKENDS, is_available, unavailable_reason

    check_counts(runs=runs, warmup=warmup, batch=batch)
    if baseline is not None and baseline not in BASELINES:
        raise ConfigError(f"--baseline {baseline!r}: expected one of {', '.join(BASELINES)}")
    if not bundles:
        raise ConfigError("no bundle given; expected one or more bundle directories")
    jobs, seen_baselines = [], set()
    common = {"runs": runs, "warmup": warmup, "batch": batch, "image": image}
    for path in bundles:
        b = read_bundle(path)
        name = backend or b.backend
        if name not in BACKENDS:
            raise suggest(name, BACKENDS, "backend")
        if not is_available(name):
            raise BackendUnavailable(f"cannot bench {b.path}: backend {name!r} is not available here "
                                     f"({unavailable_reason(name)}); a TensorRT bundle's ONNX also runs with "
                                     "--backend onnxruntime")
        for n in threads:
            if baseline:
                key = ((b.manifest.get("model") or {}).get("source_sha256"), n)
                if key not in seen_baselines:
                    seen_baselines.add(key)
                    jobs.append({"kind": "baseline", "bundle": str(b.path), "threads": n,
                                 "weights": baseline_weights, **common})
            jobs.append({"kind": "bundle", "bundle": str(b.path), "threads": n, "backend": backend, **common})
    return jobs


def run_job_isolated(job: dict, *, timeout: float = 1800) -> dict:
    """Run one job in ``python -m edgepose.profiling.worker``; its progress bar goes to our stderr."""
    with tempfile.TemporaryDirectory(prefix="edgepose-bench-") as tmp:
        job_file, out_file = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_file.write_text(json.dumps(job))
        env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]))
        proc = subprocess.run([sys.executable, "-m", "edgepose.profiling.worker", str(job_file), str(out_file)],
                              env=env, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout)
        if proc.returncode != 0 or not out_file.is_file():
            msg = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else f"exit code {proc.returncode}"
            raise EdgeposeError(f"bench of {job['bundle']} ({job['kind']}, {job['threads']} threads) failed: {msg}")
        return json.loads(out_file.read_text())


def device_id(fp: dict) -> str:
    """A short slug for a device fingerprint: CPU model + usable cores (+ GPU)."""
    base = f"{fp.get('cpu_model') or fp.get('machine') or 'device'}-{fp.get('cores_usable') or ''}c"
    if fp.get("gpu"):
        base += f"-{fp['gpu']}"
    base = re.sub(r"\((r|tm)\)|cpu|processor|\d+-core", "", base.lower())
    return re.sub(r"[^a-z0-9]+", "-", base).strip("-")[:48]


def run_bench(jobs: list[dict], *, isolate: bool = True, progress: bool = True, command: str = "") -> dict:
    """Run the jobs → a bench document (schema ``edgepose.bench``)."""
    from edgepose import __version__
    from edgepose.devices import fingerprint
    from edgepose.profiling.bench import bench_job
    from edgepose.profiling.schema import SCHEMA, SCHEMA_VERSION

    fp = fingerprint()
    dev = device_id(fp)
    results = []
    for job in jobs:
        res = run_job_isolated(dict(job, progress=progress)) if isolate else bench_job(job, progress=progress)
        res["device"] = dev
        res["isolated"] = isolate
        results.append(res)
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgepose_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "devices": {dev: fp}, "results": results}


def summary_table(doc: dict) -> str:
    """The printed summary: one line per result, speed-up over the PyTorch baseline of the same model."""
    base = {(r["model"], r["device"], r["threads"]): r["stages"]["total"]["p50"]
            for r in doc["results"] if r["role"] == "baseline"}
    lines = [f"{'name':44s} {'thr':>3s} {'p50 ms':>8s} {'p90 ms':>8s} {'pre':>6s} {'infer':>6s} {'dec':>6s} "
             f"{'FPS':>7s} {'RSS MB':>7s} {'AP':>6s} {'speed-up':>8s}"]
    for r in doc["results"]:
        st, acc = r["stages"], r.get("accuracy") or {}
        ref = base.get((r["model"], r["device"], r["threads"]))
        speed = f"{ref / st['total']['p50']:7.1f}x" if ref else f"{'':8s}"
        ap = f"{acc['AP']:6.1f}" if acc.get("AP") is not None else f"{'-':>6s}"
        lines.append(f"{r['name'][:44]:44s} {r['threads']:3d} {st['total']['p50']:8.3f} {st['total']['p90']:8.3f} "
                     f"{st['preprocess']['p50']:6.3f} {st['inference']['p50']:6.3f} {st['decode']['p50']:6.3f} "
                     f"{r['fps']:7.1f} {r['peak_rss_mb']:7.1f} {ap} {speed}")
    return "\n".join(lines)
