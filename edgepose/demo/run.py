"""``edgepose demo``: the whole chain on the embedded default models, measured.

1. each default model in PyTorch: OKS AP on held-out synthetic images (and the coco-mini photos); the real
   models (Google's MoveNet ports, :mod:`edgepose.demo.real`) on the coco-mini photos, with 95 % intervals;
2. export to every target here at fp32 (parity-gated) and INT8 (calibrated on synthetic images, accuracy-gated
   with --auto-mixed: when INT8 loses more than 1 AP point, the most sensitive layers stay float until it passes;
   a bundle that still fails is refused, and the table says so);
3. every bundle that runs here: AP on the same held-out images;
4. bench every bundle stage by stage (fresh process each) next to the PyTorch eager baseline and Google's MoveNet
   Lightning INT8 (../shared/models, through the same LiteRT interpreter and thread count);
5. every model on the real photos, bottom-up ones on a contact sheet of real-video frames → annotated JPEGs;
6. ``demo-report/``: bench.json / bench.md / bench.html (+ the accuracy table, gate outcomes and images) and
   one printed summary table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.backends import target_names
from edgepose.errors import AccuracyGateFailed

DEFAULT_MODELS = ("simplebaseline-mnv2s-edge", "centernet-mnv2s")
MOVENET = "movenet_singlepose_lightning_int8.tflite"
PEER_OF_MOVENET = ("movenet-lightning", "tflite", "int8")  # our bundle of the same model on the same interpreter


@dataclass
class DemoConfig:
    out: Path
    targets: tuple[str, ...] = field(default_factory=target_names)
    precisions: tuple[str, ...] = ("fp32", "int8")
    threads: int = 2
    val_images: int = 300  # at 100 the top-down INT8 gate verdicts were within their noise (docs/benchmarks.md)
    runs: int = 100
    calib: str = "synthetic:128"
    shared: Path | None = None  # ../shared (data/ and models/ below it); None when absent
    real_models: tuple[str, ...] = ("movenet-lightning", "movenet-multipose", "movenet-heatmap-edge")  # on real photos
    real_calib_size: int = 128  # real-video frames that calibrate their INT8 bundles
    log: object = print
    ap_data: dict = field(default_factory=dict)  # model → what its AP column was measured on
    torch_ci: dict = field(default_factory=dict)  # model → 95 % interval of its PyTorch AP (real photos)
    foreign_ap: dict = field(default_factory=dict)  # imported bundle path → (AP, interval) on the real photos
    real_data: str = "coco-mini"


@dataclass
class Row:
    model: str
    target: str
    precision: str
    status: str = "ok"
    ap: float | None = None
    bundle: Path | None = None
    ap_ci: tuple[float, float] | None = None  # 95 % bootstrap interval over the images (real photos)


def _ap(rt, val, n: int) -> float:
    from edgepose.eval.evaluate import evaluate

    return round(100 * evaluate(rt, val, max_images=n, progress=False)["AP"], 2)


def _export_one(cfg: DemoConfig, model, name: str, target: str, precision: str, int8_kwargs: dict) -> Row:
    import edgepose
    from edgepose.runtimes import is_available

    row = Row(name, target, precision)
    out = cfg.out / "bundles" / f"{name}-{target}-{precision}"
    kwargs = int8_kwargs if precision == "int8" else {}
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


def _verified(rt, path: Path) -> str:
    """`edgepose verify` on the bundle just written: its golden samples on this machine, stage by stage."""
    from edgepose.bundle import read_bundle
    from edgepose.verify import remember, verify_runtime

    bundle = read_bundle(path)
    report = verify_runtime(rt, bundle)
    remember(bundle, report)
    if report.passed:
        return "; verify passed"
    return "; verify FAILED: " + ", ".join(f"{s.name} {s.summary}" for s in report.stages if not s.passed)


def _model_rows(cfg: DemoConfig, name: str, model, score, int8_kwargs: dict) -> list[Row]:
    """Every target × precision of one model: export, then ``score(runtime)`` → (AP, interval or None)."""
    import edgepose
    from edgepose.export.targets import get_target

    rows = []
    if "int8" in cfg.precisions and "calib" in int8_kwargs:  # read (and, top-down, crop) the frames once per model
        from edgepose.export.api import calibration_set

        calib = calibration_set(model, int8_kwargs["calib"], int8_kwargs.get("calib_size"))
        int8_kwargs = dict(int8_kwargs, calib=calib)
    for target in cfg.targets:
        for precision in cfg.precisions:
            if precision not in get_target(target).precisions:
                continue
            t0 = time.perf_counter()
            row = _export_one(cfg, model, name, target, precision, int8_kwargs)
            if row.bundle is not None and row.status.startswith("ok"):
                with edgepose.load(row.bundle, threads=cfg.threads) as rt:
                    row.ap, row.ap_ci = score(rt)
                    row.status += _verified(rt, row.bundle)
            cfg.log(f"  {target:9s} {precision:5s} {time.perf_counter() - t0:5.1f} s  "
                    f"{f'AP {row.ap:.1f}' if row.ap is not None else row.status}")
            rows.append(row)
    return rows


def export_all(cfg: DemoConfig) -> tuple[list[Row], dict[str, float]]:
    """Rows for model × target × precision, and the PyTorch AP of each model (``cfg.ap_data`` says on what)."""
    from edgepose.data.sources import resolve_dataset
    from edgepose.demo.real import real_models_rows
    from edgepose.heads import get_head
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    rows, torch_ap = [], {}
    # INT8 with --auto-mixed: when the gate fails, the layers INT8 hurts most stay float until it passes
    int8 = {"calib": cfg.calib, "val": f"synthetic-val:{cfg.val_images}", "auto_mixed": True}
    for name in DEFAULT_MODELS:
        model = create(name, weights="default")
        val = resolve_dataset(f"synthetic-val:{cfg.val_images}", get_head(model.edgepose_meta.kind).sample_mode,
                              split="val")
        with TorchRuntime(model, threads=cfg.threads) as rt:
            torch_ap[name] = _ap(rt, val, cfg.val_images)
        cfg.ap_data[name] = f"synthetic-val:{cfg.val_images}"
        cfg.log(f"{name}: PyTorch fp32 AP {torch_ap[name]:.1f} on synthetic-val:{cfg.val_images}")
        rows += _model_rows(cfg, name, model, lambda rt, val=val: (_ap(rt, val, cfg.val_images), None), int8)
    rows += real_models_rows(cfg, torch_ap, _model_rows)
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
    jobs, baselined, peer_at = [], set(), None
    for r in rows:
        if r.bundle is None or r.ap is None:
            continue
        acc = {"AP": r.ap, "ap_drop": round(torch_ap[r.model] - r.ap, 2), "ap_reference": torch_ap[r.model],
               "source": f"demo eval, {cfg.ap_data.get(r.model, 'synthetic-val')}"}
        if r.model not in baselined:
            baselined.add(r.model)
            jobs.append({"kind": "baseline", "bundle": str(r.bundle), **common,
                         "accuracy": {"AP": torch_ap[r.model], "ap_drop": 0.0, "ap_reference": torch_ap[r.model],
                                      "source": acc["source"]}})
        jobs.append({"kind": "bundle", "bundle": str(r.bundle), "accuracy": acc, **common})
        if (r.model, r.target, r.precision) == PEER_OF_MOVENET:
            peer_at = len(jobs)
    if movenet is not None:  # right after its counterpart: the two timed back to back on a shared host
        jobs.insert(len(jobs) if peer_at is None else peer_at, {"kind": "bundle", "bundle": str(movenet), **common})
    cfg.log(f"bench: {len(jobs)} runs of {cfg.runs} frames, {cfg.threads} threads, one process each")
    return run_bench(jobs, progress=False, command="edgepose demo")


def real_photo_notes(cfg: DemoConfig, movenet: Path | None) -> list[str]:
    """OKS AP (95 % interval) of the synthetic-trained top-down model and Google's MoveNet INT8 on the coco-mini
    photos (ground-truth boxes); Google's number also goes to the summary's foreign row."""
    import edgepose
    from edgepose.data.coco import CocoKeypoints
    from edgepose.eval.evaluate import ap_with_interval
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    ann = cfg.shared / "data" / "coco-mini" / "test_coco.json" if cfg.shared else None
    if ann is None or not ann.is_file():
        return ["../shared/data is absent: no real-photo accuracy, generated images annotated instead"]
    coco = CocoKeypoints(ann, ann.parent)
    with TorchRuntime(create(DEFAULT_MODELS[0], weights="default"), threads=cfg.threads) as rt:
        ours, ci = ap_with_interval(rt, coco)
    notes = [f"{DEFAULT_MODELS[0]} (trained on synthetic people only): OKS AP {_ap_cell(ours, ci)} on the "
             f"{len(coco.image_ids)} coco-mini photos (ground-truth boxes)"]
    if movenet is not None:
        with edgepose.load(movenet, threads=cfg.threads) as rt:
            theirs, ci = ap_with_interval(rt, coco)
        cfg.foreign_ap[str(movenet)] = (theirs, ci)
        notes.append(f"MoveNet Lightning INT8 (Google's TFLite, trained on COCO): OKS AP {_ap_cell(theirs, ci)} "
                     "on the same photos")
    return notes


def _ap_cell(ap: float | None, ci: tuple[float, float] | None) -> str:
    if ap is None:
        return "–"
    return f"{ap:.1f}" + (f" ({ci[0]:.0f}–{ci[1]:.0f})" if ci and all(v == v for v in ci) else "")


def summary(rows: list[Row], torch_ap: dict[str, float], doc: dict, cfg: DemoConfig | None = None
            ) -> tuple[list[str], list[list]]:
    """The printed and reported summary: model × target × precision → AP, latency, speed-up over PyTorch."""
    lat = {(r["model"], r["target"], r["precision"]): r["stages"]["total"]["p50"] for r in doc["results"]}
    ap_data = cfg.ap_data if cfg else {}
    headers = ["model", "target", "precision", "AP (95 % CI)", "AP drop", "p50 ms", "speed-up", "status"]
    out = []
    for name in torch_ap:
        base = lat.get((name, "pytorch", "fp32"))
        out.append([name, "pytorch", "fp32", _ap_cell(torch_ap[name], (cfg.torch_ci.get(name) if cfg else None)), "–",
                    f"{base:.2f}" if base else "–", "1.0x", f"baseline; AP on {ap_data.get(name, 'synthetic-val')}"])
        for r in (r for r in rows if r.model == name):
            ms = lat.get((name, r.target, r.precision))
            speed = f"{base / ms:.1f}x" if ms and base else "–"
            drop = f"{torch_ap[name] - r.ap:.2f}" if r.ap is not None else "–"
            out.append([name, r.target, r.precision, _ap_cell(r.ap, r.ap_ci), drop, f"{ms:.2f}" if ms else "–",
                        speed, r.status])
    for r in doc["results"]:
        if r["role"] == "foreign":
            ap, ci = (cfg.foreign_ap.get(str(r["bundle"]), (None, None)) if cfg else (None, None))
            out.append([r["model"], r["target"], r["precision"], _ap_cell(ap, ci), "–",
                        f"{r['stages']['total']['p50']:.2f}", "–", "foreign model, same interpreter and threads"
                        + (f"; AP on {cfg.real_data}" if ap is not None else "")])
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
    headers, table = summary(rows, torch_ap, doc, cfg)
    notes.append(f"demo wall time {time.perf_counter() - start:.0f} s")
    doc["sections"] = [
        {"title": "Summary: every target × precision", "headers": headers, "rows": table, "notes": notes},
        {"title": "The models on real photos and video", "images": images, "notes": []},
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
