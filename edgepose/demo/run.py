"""``edgepose demo``: the whole chain on the embedded default models, measured.

1. each default model in PyTorch: OKS AP on held-out synthetic images (and the coco-mini photos);
2. export to every target here at fp32 (parity-gated) and INT8 (calibrated on synthetic images, accuracy-gated
   with --auto-mixed: when INT8 loses more than 1 AP point, the most sensitive layers stay float until it passes;
   a bundle that still fails is refused, and the table says so);
3. every bundle that runs here: AP on the same held-out images;
4. bench every bundle stage by stage (fresh process each) next to the PyTorch eager baseline and Google's MoveNet
   Lightning INT8 (../shared/models, through the same LiteRT interpreter and thread count);
5. the default models on the real photos and video → annotated JPEGs;
6. ``demo-report/``: bench.json / bench.md / bench.html (+ the accuracy table, gate outcomes and images) and
   one printed summary table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import AccuracyGateFailed

DEFAULT_MODELS = ("simplebaseline-mnv2s-edge", "centernet-mnv2s")
MOVENET = "movenet_singlepose_lightning_int8.tflite"


@dataclass
class DemoConfig:
    out: Path
    targets: tuple[str, ...] = ("onnx", "openvino", "tflite", "tensorrt")
    precisions: tuple[str, ...] = ("fp32", "int8")
    threads: int = 2
    val_images: int = 300  # at 100 the top-down INT8 gate verdicts were within their noise (docs/benchmarks.md)
    runs: int = 100
    calib: str = "synthetic:128"
    shared: Path | None = None  # ../shared (data/ and models/ below it); None when absent
    log: object = print


@dataclass
class Row:
    model: str
    target: str
    precision: str
    status: str = "ok"
    ap: float | None = None
    bundle: Path | None = None


def _ap(rt, val, n: int) -> float:
    from edgepose.eval.evaluate import evaluate

    return round(100 * evaluate(rt, val, max_images=n, progress=False)["AP"], 2)


def _export_one(cfg: DemoConfig, model, name: str, target: str, precision: str) -> Row:
    import edgepose
    from edgepose.runtimes import is_available

    row = Row(name, target, precision)
    out = cfg.out / "bundles" / f"{name}-{target}-{precision}"
    # INT8 with --auto-mixed: when the gate fails, the layers INT8 hurts most stay float until it passes
    kwargs = ({"calib": cfg.calib, "val": f"synthetic-val:{cfg.val_images}", "auto_mixed": True}
              if precision == "int8" else {})
    try:
        b = edgepose.export(model, target=target, precision=precision, out=out, log=None, **kwargs)
    except AccuracyGateFailed as exc:
        row.status = f"refused by the accuracy gate: {str(exc).splitlines()[0]}"
        return row
    row.bundle = b.path
    kept = (b.manifest.get("quantization") or {}).get("kept_float") or []
    mixed = f" ({len(kept)} layer(s) kept float by --auto-mixed)" if kept else ""
    row.status = f"ok{mixed}"
    if not is_available(b.backend):
        row.status = f"bundle written{mixed}; not run here: no {b.backend} on this machine"
    return row


def export_all(cfg: DemoConfig) -> tuple[list[Row], dict[str, float]]:
    """Rows for model × target × precision, and the PyTorch AP of each model."""
    import edgepose
    from edgepose.data.sources import resolve_dataset
    from edgepose.export.targets import get_target
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    rows, torch_ap = [], {}
    for name in DEFAULT_MODELS:
        model = create(name, weights="default")
        val = resolve_dataset(f"synthetic-val:{cfg.val_images}", model.edgepose_meta.kind, split="val")
        with TorchRuntime(model, threads=cfg.threads) as rt:
            torch_ap[name] = _ap(rt, val, cfg.val_images)
        cfg.log(f"{name}: PyTorch fp32 AP {torch_ap[name]:.1f} on synthetic-val:{cfg.val_images}")
        for target in cfg.targets:
            for precision in cfg.precisions:
                if precision not in get_target(target).precisions:
                    continue
                t0 = time.perf_counter()
                row = _export_one(cfg, model, name, target, precision)
                if row.bundle is not None and row.status.startswith("ok"):
                    with edgepose.load(row.bundle, threads=cfg.threads) as rt:
                        row.ap = _ap(rt, val, cfg.val_images)
                cfg.log(f"  {target:9s} {precision:5s} {time.perf_counter() - t0:5.1f} s  "
                        f"{f'AP {row.ap:.1f}' if row.ap is not None else row.status}")
                rows.append(row)
    return rows, torch_ap


def import_movenet(cfg: DemoConfig) -> Path | None:
    from edgepose.export.importer import import_model
    from edgepose.runtimes import is_available

    src = cfg.shared / "models" / MOVENET if cfg.shared else None
    if src is None or not src.is_file() or not is_available("tflite"):
        return None
    out = cfg.out / "bundles" / "movenet-lightning-int8"
    return import_model(src, kind="regression", keypoints="coco", out=out).path


def bench_all(cfg: DemoConfig, rows: list[Row], torch_ap: dict[str, float], movenet: Path | None) -> dict:
    from edgepose.profiling.runner import run_bench

    common = {"threads": cfg.threads, "runs": cfg.runs, "warmup": 10, "batch": 1, "image": None}
    jobs, baselined = [], set()
    for r in rows:
        if r.bundle is None or r.ap is None:
            continue
        acc = {"AP": r.ap, "ap_drop": round(torch_ap[r.model] - r.ap, 2), "ap_reference": torch_ap[r.model],
               "source": f"demo eval, synthetic-val:{cfg.val_images}"}
        if r.model not in baselined:
            baselined.add(r.model)
            jobs.append({"kind": "baseline", "bundle": str(r.bundle), **common,
                         "accuracy": {"AP": torch_ap[r.model], "ap_drop": 0.0, "ap_reference": torch_ap[r.model],
                                      "source": acc["source"]}})
        jobs.append({"kind": "bundle", "bundle": str(r.bundle), "accuracy": acc, **common})
    if movenet is not None:
        jobs.append({"kind": "bundle", "bundle": str(movenet), **common})
    cfg.log(f"bench: {len(jobs)} runs of {cfg.runs} frames, {cfg.threads} threads, one process each")
    return run_bench(jobs, progress=False, command="edgepose demo")


def real_photo_notes(cfg: DemoConfig, movenet: Path | None) -> list[str]:
    """OKS AP of the top-down PyTorch model and MoveNet on the coco-mini photos (ground-truth boxes)."""
    import edgepose
    from edgepose.data.coco import CocoKeypoints
    from edgepose.eval.evaluate import evaluate
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    ann = cfg.shared / "data" / "coco-mini" / "test_coco.json" if cfg.shared else None
    if ann is None or not ann.is_file():
        return ["../shared/data is absent: no real-photo accuracy, generated images annotated instead"]
    coco = CocoKeypoints(ann, ann.parent)
    with TorchRuntime(create(DEFAULT_MODELS[0], weights="default"), threads=cfg.threads) as rt:
        ours = evaluate(rt, coco, progress=False)["AP"]
    notes = [f"{DEFAULT_MODELS[0]} (trained on synthetic people only): OKS AP {100 * ours:.1f} on the "
             f"{len(coco.image_ids)} coco-mini photos (ground-truth boxes)"]
    if movenet is not None:
        with edgepose.load(movenet, threads=cfg.threads) as rt:
            theirs = evaluate(rt, coco, progress=False)["AP"]
        notes.append(f"MoveNet Lightning INT8 (Google, trained on COCO): OKS AP {100 * theirs:.1f} on the same photos")
    return notes


def summary(rows: list[Row], torch_ap: dict[str, float], doc: dict) -> tuple[list[str], list[list]]:
    """The printed and reported summary: model × target × precision → AP, latency, speed-up over PyTorch."""
    lat = {(r["model"], r["target"], r["precision"]): r["stages"]["total"]["p50"] for r in doc["results"]}
    headers = ["model", "target", "precision", "AP", "AP drop", "p50 ms", "speed-up", "status"]
    out = []
    for name in DEFAULT_MODELS:
        base = lat.get((name, "pytorch", "fp32"))
        out.append([name, "pytorch", "fp32", f"{torch_ap[name]:.1f}", "–", f"{base:.2f}" if base else "–", "1.0x",
                    "baseline"])
        for r in (r for r in rows if r.model == name):
            ms = lat.get((name, r.target, r.precision))
            speed = f"{base / ms:.1f}x" if ms and base else "–"
            ap = f"{r.ap:.1f}" if r.ap is not None else "–"
            drop = f"{torch_ap[name] - r.ap:.2f}" if r.ap is not None else "–"
            out.append([name, r.target, r.precision, ap, drop, f"{ms:.2f}" if ms else "–", speed, r.status])
    for r in doc["results"]:
        if r["role"] == "foreign":
            out.append([r["model"], r["target"], r["precision"], "–", "–", f"{r['stages']['total']['p50']:.2f}",
                        "–", "foreign model, same interpreter and threads"])
    return headers, out


def print_table(headers: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    widths[-1] = min(widths[-1], 100)
    for row in [headers, *rows]:
        print("  ".join(str(c)[:w].ljust(w) if i < 3 or i == len(row) - 1 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())


def run_demo(cfg: DemoConfig) -> dict:
    from edgepose.demo.images import annotate
    from edgepose.profiling.report import write_reports

    start = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    rows, torch_ap = export_all(cfg)
    movenet = import_movenet(cfg)
    doc = bench_all(cfg, rows, torch_ap, movenet)
    notes = real_photo_notes(cfg, movenet)
    notes += [f"bench failed: {f['error']}" for f in doc.get("failures", [])]
    images = _annotated(cfg, rows, movenet, annotate)
    headers, table = summary(rows, torch_ap, doc)
    notes.append(f"demo wall time {time.perf_counter() - start:.0f} s")
    doc["sections"] = [
        {"title": "Summary: every target × precision", "headers": headers, "rows": table, "notes": notes},
        {"title": "The default models on real photos and video", "images": images, "notes": []},
    ]
    paths = write_reports(doc, cfg.out)
    print()
    print_table(headers, table)
    for n in notes:
        print(f"- {n}")
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return doc


def _annotated(cfg: DemoConfig, rows: list[Row], movenet: Path | None, annotate) -> list[dict]:
    """Annotated JPEGs from the INT8 (else fp32) bundle of each model on the fastest CPU target here."""
    import edgepose

    picks = {}
    for r in rows:
        if r.ap is not None and (r.model not in picks or r.precision == "int8" and picks[r.model].precision != "int8"):
            picks[r.model] = r
    runtimes = {}
    try:
        for r in picks.values():
            runtimes[f"{r.model} {r.target} {r.precision}"] = edgepose.load(r.bundle, threads=cfg.threads)
        if movenet is not None:
            runtimes["movenet-lightning tflite int8"] = edgepose.load(movenet, threads=cfg.threads)
        shared_data = cfg.shared / "data" if cfg.shared else None
        written = annotate({k.replace(" ", "_"): v for k, v in runtimes.items()}, cfg.out / "images", shared_data)
    finally:
        for rt in runtimes.values():
            rt.close()
    return [{"file": f"images/{w['file']}", "caption": f"{w['model']} on {w['source']}"
             + (f": {w['people']} people" if w["people"] is not None else "")} for w in written]
