"""``edgepose demo``: the main job on the embedded default models (see :mod:`edgepose.demo.run`)."""

from __future__ import annotations

from pathlib import Path

from edgepose.backends import target_names
from edgepose.commands.base import command
from edgepose.errors import ConfigError


def _demo_args(p) -> None:
    p.add_argument("--out", default="demo-report",
                   help="report folder: bench.html / bench.md / bench.json, images/ and bundles/")
    p.add_argument("--targets", default=",".join(target_names()),
                   help="comma-separated targets (a target whose backend is missing here is exported, not run)")
    p.add_argument("--precisions", default="fp32,int8", help="comma-separated precisions to export")
    p.add_argument("--threads", type=int, default=2, help="inference threads for evaluation and timing")
    p.add_argument("--val-images", type=int, default=300,
                   help="held-out synthetic images per model for AP (the INT8 accuracy gate uses the same ones; "
                        "at 100 the 1.0 limit lay inside the drop's 95 %% interval for every top-down INT8 bundle, "
                        "at 300 for none)")
    p.add_argument("--calib", default="synthetic:128", help="calibration source for INT8 (see `edgepose export`)")
    p.add_argument("--runs", type=int, default=100, help="timed frames per bundle (after 10 warm-up frames)")
    p.add_argument("--real-models", default="movenet-lightning,movenet-multipose,movenet-heatmap-edge",
                   help="comma-separated real-image models (MoveNet, and the model distilled from it) run beside the "
                        "synthetic-trained defaults and "
                        "scored on the coco-mini photos; INT8 calibrated on real videos and gated label-free on "
                        "held-out ones ('' for none)")
    p.add_argument("--shared", default=None,
                   help="the shared folder with data/ and models/ (default: ../shared beside the project, if any)")


def _shared(arg: str | None) -> Path | None:
    if arg is not None:
        path = Path(arg)
        if not path.is_dir():
            raise ConfigError(f"--shared {arg}: no such folder; expected the folder holding data/ and models/")
        return path
    for cand in (Path.cwd().parent / "shared", Path(__file__).resolve().parents[3] / "shared"):
        if (cand / "data").is_dir():
            return cand
    return None


@command("demo", "the main job: default models → export every target here (fp32 + gated INT8), bench, report")(
    _demo_args)
def run_demo(args) -> int:
    from edgepose.demo.run import DemoConfig
    from edgepose.demo.run import run_demo as _run
    from edgepose.export.targets import get_target
    from edgepose.models import get_factory
    from edgepose.weights import DEFAULTS

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    for t in targets:
        get_target(t)
    precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
    bad = [p for p in precisions if p not in ("fp32", "fp16", "int8")]
    if bad or not precisions:
        raise ConfigError(f"--precisions {args.precisions!r}: expected a comma-separated list of fp32, fp16, int8")
    for name, value, least in (("--threads", args.threads, 1), ("--val-images", args.val_images, 1),
                               ("--runs", args.runs, 1)):
        if value < least:
            raise ConfigError(f"{name} {value}: expected at least {least}")
    real = tuple(m.strip() for m in args.real_models.split(",") if m.strip())
    for name in real:
        get_factory(name)  # unknown name → close-match error before any work
        if name not in DEFAULTS:
            raise ConfigError(f"--real-models {name}: expected a model with embedded weights "
                              f"({', '.join(sorted(DEFAULTS))})")
    cfg = DemoConfig(out=Path(args.out), targets=targets, precisions=precisions, threads=args.threads,
                     val_images=args.val_images, runs=args.runs, calib=args.calib, shared=_shared(args.shared),
                     real_models=real)
    _run(cfg)
    return 0
