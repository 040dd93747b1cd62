"""The bench loop: time a bundle's runtime stage by stage on one image, the way a camera pipeline calls it.

Each timed run is one ``runtime(image, boxes)`` call — the public path a user runs per frame — with the
runtime's stage profiling on (:attr:`edgepose.runtimes.base.Runtime.stage_times`), so preprocess
(checks + crop / letterbox + normalisation), inference (the backend's run) and decode (keypoint decode,
mapping back to the image, building the Poses) add up to the total. Warm-up runs are not recorded.

:func:`bench_job` runs one job in this process; :mod:`edgepose.profiling.runner` runs each job in a fresh
process, so that peak RSS belongs to one bundle and thread pools of one backend do not leak into the next.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, InputError
from edgepose.heads import get_head
from edgepose.profiling.schema import percentiles
from edgepose.utils.progress import Progress

STAGES = ("preprocess", "inference", "decode")
BENCH_IMAGE_SIZE = (640, 480)  # (w, h) of the generated frame: a VGA camera


def bench_frame(kind: str, *, image: str | None = None, batch: int = 1, seed: int = 0):
    """(image BGR, boxes or None) for a bench run.

    ``image`` is a photo path; without one a synthetic VGA frame is drawn from ``seed`` (one person for
    top-down models, several for bottom-up ones). Top-down models get ``batch`` person boxes (the first
    person's box, shifted a little each time), so a run infers a batch of ``batch`` crops.
    """
    import cv2

    if image is not None:
        frame = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError(f"--image {image}: not a readable image file (expected a JPEG/PNG photo)")
        box = np.array([0, 0, frame.shape[1], frame.shape[0]], np.float32)
    else:
        from edgepose.data.synthetic import render_sample

        mode = get_head(kind).sample_mode
        frame, anns = render_sample(np.random.default_rng(seed), mode=mode, image_size=BENCH_IMAGE_SIZE)
        x, y, w, h = anns[0]["bbox"] if anns else (0, 0, *BENCH_IMAGE_SIZE)
        box = np.array([x, y, x + w, y + h], np.float32)
    if get_head(kind).bottom_up:
        if batch != 1:
            raise ConfigError(f"--batch {batch}: a bottom-up ({kind}) model takes one frame per call; expected 1")
        return frame, None
    shifts = np.arange(batch, dtype=np.float32)[:, None] * 2.0
    boxes = box[None] + shifts
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, frame.shape[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, frame.shape[0])
    return frame, boxes


def time_runtime(rt, frame: np.ndarray, boxes, *, runs: int, warmup: int, desc: str = "bench",
                 progress: bool = True) -> dict[str, list[float]]:
    """{stage: [ms per run]} for preprocess, inference, decode and total (wall time of the whole call)."""
    call = (lambda: rt(frame)) if boxes is None else (lambda: rt(frame, boxes))
    for _ in range(warmup):
        call()
    samples = {s: [] for s in (*STAGES, "total")}
    bar = Progress(runs, desc, enabled=progress)
    try:
        for _ in range(runs):
            rt.stage_times = dict.fromkeys(STAGES, 0.0)
            start = time.perf_counter()
            call()
            total = time.perf_counter() - start
            for s in STAGES:
                samples[s].append(rt.stage_times[s] * 1e3)
            samples["total"].append(total * 1e3)
            bar.update()
    finally:
        rt.stage_times = None
        bar.close()
    return samples


def _accuracy(manifest: dict) -> dict | None:
    acc = manifest.get("accuracy") or {}
    if "ap" not in acc:
        return None
    out = {"AP": acc["ap"], "ap_drop": acc.get("ap_drop"), "ap_reference": acc.get("ap_reference"),
           "source": f"manifest gate ({acc.get('val', 'held-out data')})"}
    if isinstance(acc.get("ap_drop_interval95"), list):
        out["ap_drop_interval95"] = acc["ap_drop_interval95"]
    return out


def _open_bundle(job: dict):
    """(runtime, result fields) for a bundle job; the fields are read before the backend loads anything."""
    import edgepose
    from edgepose.bundle import read_bundle

    b = read_bundle(job["bundle"])
    m = b.manifest
    model = m.get("model") or {}
    fields = {"bundle": str(b.path), "model": model.get("name", b.path.name), "target": b.target,
              "precision": m.get("precision", "fp32"), "role": "foreign" if "imported_from" in model else "bundle",
              "decode": (m.get("spec") or {}).get("decode"),
              "accuracy": _accuracy(m),
              "model_size_mb": sum(f.get("bytes", 0) for f in m.get("files", {}).values()) / 2**20}
    rt = edgepose.load(b.path, backend=job.get("backend"), threads=job["threads"])
    fields["backend"] = rt.backend
    return rt, fields


def _open_baseline(job: dict):
    """(PyTorch eager fp32 runtime, result fields) for the model a bundle was exported from."""
    from edgepose.bundle import read_bundle

    m = read_bundle(job["bundle"]).manifest
    model, note = baseline_model(m, job.get("weights"))
    from edgepose.runtimes.torch import TorchRuntime

    rt = TorchRuntime(model, threads=job["threads"]).load()
    n_bytes = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    fields = {"bundle": str(job["bundle"]), "model": m["model"]["name"], "target": "pytorch", "backend": "torch",
              "precision": "fp32", "role": "baseline", "accuracy": None, "model_size_mb": n_bytes / 2**20,
              "note": note}
    return rt, fields


def baseline_model(manifest: dict, weights: str | None = None):
    """(nn.Module, note): the registered model a bundle names, with the weights it was exported from.

    The embedded default weights (or ``weights``) are used when their hash equals the manifest's
    ``source_sha256``; otherwise the architecture is timed with those weights and the note says so.
    """
    from edgepose.export.api import source_hash
    from edgepose.models import create, list_models
    from edgepose.weights import DEFAULTS

    info = manifest.get("model") or {}
    name = info.get("name")
    if "imported_from" in info or name not in list_models():
        raise ConfigError(f"--baseline torch: bundle model {name!r} is not a registered edgepose model "
                          f"(imported or your own); expected one of `edgepose models`")
    config = {k: (tuple(v) if isinstance(v, list) else v) for k, v in (info.get("config") or {}).items()}
    if weights is None and name not in DEFAULTS:
        model, note = create(name, **config), "random weights (no default weights; pass --baseline-weights)"
    else:
        model = create(name, weights=weights or "default", **config)
        same = source_hash(model) == info.get("source_sha256")
        note = "same weights as the bundle" if same else "architecture only: weights differ from the bundle's"
    return model.eval(), note


def bench_job(job: dict, *, progress: bool = True) -> dict:
    """Run one job (``{"kind": "bundle"|"baseline", "bundle", "threads", "runs", "warmup", "batch",
    "image"[, "accuracy"]}``) in this process → one result dict of the bench schema (without the device id)."""
    rt, fields = (_open_baseline if job["kind"] == "baseline" else _open_bundle)(job)
    if job.get("accuracy") is not None:  # measured by the caller (e.g. the demo's own evaluation)
        fields["accuracy"] = job["accuracy"]
    with rt:
        spec = rt.spec
        frame, boxes = bench_frame(spec.kind, image=job.get("image"), batch=job["batch"])
        desc = f"{fields['model']} {fields['target']} {fields['precision']} x{job['threads']}"
        samples = time_runtime(rt, frame, boxes, runs=job["runs"], warmup=job["warmup"], desc=desc,
                               progress=progress)
    stages = {s: percentiles(v) for s, v in samples.items()}
    result = {"name": f"{fields['model']} · {fields['target']} · {fields['precision']}", **fields,
              "kind": spec.kind, "input_size": list(spec.input.size), "threads": job["threads"],
              "batch": job["batch"], "runs": job["runs"], "warmup": job["warmup"], "stages": stages,
              "samples_ms": {s: [round(x, 5) for x in v] for s, v in samples.items()},
              "fps": 1e3 / stages["total"]["mean"], "peak_rss_mb": peak_rss_mb()}
    if result.get("model_size_mb") is not None:
        result["model_size_mb"] = round(result["model_size_mb"], 3)
    return result


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    Linux: VmHWM from /proc/self/status — the high-water mark of this program's memory. (``ru_maxrss`` is not
    used there: Linux carries it across fork + exec, so a worker started by a big parent would report the
    parent's peak.) Elsewhere ``ru_maxrss`` (KiB on Linux/BSD, bytes on macOS).
    """
    import sys

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)


def check_image_arg(image: str | None) -> None:
    if image is None:
        return
    if not Path(image).is_file():
        raise InputError(f"--image {image}: no such file; expected a JPEG/PNG photo")
    bench_frame("centernet", image=image)  # decodes it: the same check a bench run makes, before any timing
