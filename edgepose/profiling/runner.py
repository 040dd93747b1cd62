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

from edgepose.errors import BackendUnavailable, ConfigError, EdgeposeError
from edgepose.heads import get_head, head_names
from edgepose.utils.cores import usable_cores
from edgepose.utils.options import check_threads
from edgepose.utils.signals import remove_on_terminate

BASELINES = ("torch",)


def parse_threads(text: str | int | list) -> list[int]:
    """'1,2,4' → [1, 2, 4]; every count must be a positive integer."""
    items = text if isinstance(text, list) else str(text).split(",")
    out = []
    for item in items:
        try:
            n = int(str(item).strip())
        except ValueError:
            raise ConfigError(f"--threads {text!r}: expected positive integers separated by commas, e.g. 1,2,4") \
                from None
        out.append(check_threads(n, "--threads"))
    return list(dict.fromkeys(out))


def check_counts(*, runs: int, warmup: int, batch: int) -> None:
    if runs < 1:
        raise ConfigError(f"--runs {runs}: expected at least 1 timed run")
    if warmup < 0:
        raise ConfigError(f"--warmup {warmup}: expected 0 or more warm-up runs")
    if batch < 1:
        raise ConfigError(f"--batch {batch}: expected at least 1 person crop per frame")


def _check_baseline(b, baseline: str | None, log) -> bool:
    """True when a PyTorch baseline can be built for bundle ``b`` (else a note, or an error without torch)."""
    if not baseline:
        return False
    from edgepose.utils.lazy import is_importable

    model = b.manifest.get("model") or {}
    if "imported_from" in model:
        log(f"note: --baseline torch: {b.path} is an imported model ({model.get('name')}); no PyTorch baseline for it")
        return False
    if not is_importable("torch"):
        raise BackendUnavailable("--baseline torch needs PyTorch on this machine: pip install 'edgepose[export]' "
                                 "(or bench without --baseline)")
    from edgepose.models import list_models

    if model.get("name") not in list_models():
        log(f"note: --baseline torch: {b.path} was exported from {model.get('name')!r}, not a registered model; "
            "no PyTorch baseline for it")
        return False
    return True


def _check_bundle(b, backend: str | None, batch: int) -> None:
    from edgepose.runtimes import check_backend_runs, is_available, unavailable_reason

    name = backend or b.backend
    check_backend_runs(name, b.target, f"{b.path}, a")
    if not is_available(name):
        raise BackendUnavailable(f"cannot bench {b.path}: backend {name!r} is not available here "
                                 f"({unavailable_reason(name)}); a TensorRT bundle's ONNX also runs with "
                                 "--backend onnxruntime")
    kind = (b.manifest.get("spec") or {}).get("kind")
    if kind in head_names() and get_head(kind).bottom_up and batch != 1:
        raise ConfigError(f"--batch {batch}: {b.path} is a bottom-up ({kind}) model, which takes one frame per "
                          "call; expected --batch 1")


def plan_jobs(bundles: list[str], *, threads: list[int], runs: int, warmup: int, batch: int,
              image: str | None = None, baseline: str | None = None, baseline_weights: str | None = None,
              backend: str | None = None, log=None) -> list[dict]:
    """Check everything before any timing: counts, the image, every bundle (missing, corrupt, tampered →
    BundleError), its backend (BackendUnavailable naming the pip extra), batch vs model kind, baselines.
    The same bundle named twice is timed once; thread counts above the usable cores get a note."""
    from edgepose.bundle import read_bundle
    from edgepose.profiling.bench import check_image_arg

    log = log or (lambda msg: print(msg, file=sys.stderr))
    check_counts(runs=runs, warmup=warmup, batch=batch)
    check_image_arg(image)
    if baseline is not None and baseline not in BASELINES:
        raise ConfigError(f"--baseline {baseline!r}: expected one of {', '.join(BASELINES)}")
    if baseline_weights is not None and not Path(baseline_weights).is_file():
        raise ConfigError(f"--baseline-weights {baseline_weights}: no such file; expected a checkpoint of the "
                          "model the bundles were exported from")
    if not bundles:
        raise ConfigError("no bundle given; expected one or more bundle directories")
    cores = usable_cores()
    for n in threads:
        if n > cores:
            log(f"note: {n} threads on {cores} usable cores: the timings measure oversubscription")
    jobs, seen_baselines = [], set()
    common = {"runs": runs, "warmup": warmup, "batch": batch, "image": image}
    for path in dict.fromkeys(str(Path(p).resolve()) for p in bundles):
        b = read_bundle(path)
        _check_bundle(b, backend, batch)
        with_baseline = _check_baseline(b, baseline, log)
        for n in threads:
            key = ((b.manifest.get("model") or {}).get("source_sha256"), n)
            if with_baseline and key not in seen_baselines:
                seen_baselines.add(key)
                jobs.append({"kind": "baseline", "bundle": str(b.path), "threads": n, "weights": baseline_weights,
                             **common})
            jobs.append({"kind": "bundle", "bundle": str(b.path), "threads": n, "backend": backend, **common})
    return jobs


def _signal_name(code: int) -> str:
    import signal

    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
    return f"{name}{' (out of memory?)' if name == 'SIGKILL' else ''}"


def run_job_isolated(job: dict, *, timeout: float = 1800) -> dict:
    """Run one job in ``python -m edgepose.profiling.worker``; its progress bar goes to our stderr, its error
    comes back as a one-line EdgeposeError (an unexpected error's traceback is kept in a log file it names)."""
    with tempfile.TemporaryDirectory(prefix="edgepose-bench-") as tmp, remove_on_terminate(tmp):
        job_file, out_file = Path(tmp) / "job.json", Path(tmp) / "result.json"
        err_file = Path(tmp) / "error.txt"
        job_file.write_text(json.dumps(job))
        env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]))
        what = f"bench of {job['bundle']} ({job['kind']}, {job['threads']} threads)"
        try:
            proc = subprocess.run([sys.executable, "-m", "edgepose.profiling.worker", str(job_file), str(out_file),
                                   str(err_file)], env=env, stdout=subprocess.DEVNULL, stderr=None,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EdgeposeError(f"{what} timed out after {timeout:.0f} s") from None
        if proc.returncode == 0 and out_file.is_file():
            return json.loads(out_file.read_text())
        text = err_file.read_text().strip() if err_file.is_file() else ""
        if text:
            msg = text.splitlines()[0]
            if "\n" in text:  # a traceback follows: keep it past the temporary folder
                fd, log = tempfile.mkstemp(prefix="edgepose-bench-", suffix=".log")
                with os.fdopen(fd, "w") as f:
                    f.write(text + "\n")
                msg += f" (traceback in {log})"
        elif proc.returncode < 0:
            msg = f"the worker was killed by {_signal_name(proc.returncode)}"
        else:
            msg = f"the worker exited with code {proc.returncode} and no message"
        raise EdgeposeError(f"{what} failed: {msg}")


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
    results, failures = [], []
    for job in jobs:
        try:
            res = run_job_isolated(dict(job, progress=progress)) if isolate else bench_job(job, progress=progress)
        except EdgeposeError as exc:  # the other jobs still run; the caller reports the failures
            failures.append({"bundle": job["bundle"], "kind": job["kind"], "threads": job["threads"],
                             "error": str(exc)})
            continue
        res["device"] = dev
        res["isolated"] = isolate
        results.append(res)
    distinct_names(results)
    doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgepose_version": __version__,
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
           "devices": {dev: fp}, "results": results}
    if failures:
        doc["failures"] = failures
    return doc


def distinct_names(results: list[dict]) -> None:
    """Rename results that share a name on the same device, threads and batch (two bundles of one model, target
    and precision): first by decode placement, then by bundle folder, so that rows and plot labels differ."""
    for extra in (lambda r: f"decode {r.get('decode') or '?'}", lambda r: Path(str(r["bundle"])).name):
        groups: dict[tuple, list[dict]] = {}
        for r in results:
            groups.setdefault((r["name"], r["device"], r["threads"], r["batch"]), []).append(r)
        for same in groups.values():
            if len(same) > 1 and len({extra(r) for r in same}) > 1:
                for r in same:
                    r["name"] = f"{r['name']} · {extra(r)}"


def summary_table(doc: dict) -> str:
    """The printed summary: one line per result, speed-up over the PyTorch baseline of the same model."""
    base = {(r["model"], r["device"], r["threads"], r["batch"]): r["stages"]["total"]["p50"]
            for r in doc["results"] if r["role"] == "baseline"}
    width = min(max([44] + [len(str(r["name"])) for r in doc["results"]]), 90)
    lines = [f"{'name':{width}s} {'thr':>3s} {'p50 ms':>8s} {'p90 ms':>8s} {'pre':>6s} {'infer':>6s} {'dec':>6s} "
             f"{'FPS':>7s} {'RSS MB':>7s} {'AP':>6s} {'speed-up':>8s}"]
    for r in doc["results"]:
        st, acc = r["stages"], r.get("accuracy") or {}
        ref = base.get((r["model"], r["device"], r["threads"], r["batch"]))
        speed = f"{ref / st['total']['p50']:7.1f}x" if ref else f"{'':8s}"
        ap = f"{acc['AP']:6.1f}" if acc.get("AP") is not None else f"{'-':>6s}"
        lines.append(f"{r['name'][:width]:{width}s} {r['threads']:3d} {st['total']['p50']:8.3f} "
                     f"{st['total']['p90']:8.3f} {st['preprocess']['p50']:6.3f} {st['inference']['p50']:6.3f} "
                     f"{st['decode']['p50']:6.3f} "
                     f"{r['fps']:7.1f} {r['peak_rss_mb']:7.1f} {ap} {speed}")
    return "\n".join(lines)
