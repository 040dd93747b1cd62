"""INT8 of the whole network against INT8 of the trunk only (``int8_modules``), per target: accuracy and speed.

    .venv/bin/python benchmarks/int8_scope.py [--models movenet-heatmap-edge movenet-centernet-edge]
        [--targets onnx openvino tflite] [--calib-sizes 128] [--threads 2] [--runs 100] [--rounds 5]
        [--int8-modules MODULE... [--skip-all]]

Each model (embedded default weights) is exported per target three times: fp32, INT8 of the whole network
(``int8_modules="all"``) and INT8 with the model's own ``int8_modules`` (the MoveNet-trunk students: the trunk
only). INT8 is calibrated on the demo's five real calibration videos (128 samples, or each of ``--calib-sizes``:
one pair of INT8 bundles per size) and gated label-free on its
three held-out videos (60 frames, the demo's limit of 20 AP points; bundles the gate refuses are still built, with
``allow_accuracy_drop``, to be measured). Reported per bundle: the gate's drop with its 95 % interval and the median
keypoint displacement, OKS AP on the coco-mini photos with COCO's labels (top-down: ground-truth boxes), and
``rt.infer`` on one input tensor (model + in-graph decoder; median of the per-round medians, the bundles timed in
interleaved rounds). ``--int8-modules`` adds a bundle per size quantizing those modules instead (a scope to try before
it becomes a model's default); ``--skip-all`` leaves out the whole-network INT8 bundles.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_infer_ms, machine, table, today  # noqa: E402

MODELS = ("movenet-heatmap-edge", "movenet-centernet-edge")
VARIANTS = ("fp32", "int8 all", "int8 scoped")


def _export(model, target: str, variant: str, out: Path, sources, calib_size: int = 128, modules=None):
    import edgepose
    from edgepose.demo.real import REAL_MAX_AP_DROP, VAL_FRAMES
    from edgepose.export.options import QuantOptions

    if variant == "fp32":
        return edgepose.export(model, target=target, out=out, log=None)
    calib, val, _ = sources
    quant = QuantOptions(calib=calib, calib_size=calib_size, val=val, val_size=VAL_FRAMES, max_ap_drop=REAL_MAX_AP_DROP,
                         allow_accuracy_drop=True,
                         int8_modules={"int8 all": "all", "int8 scoped": None}.get(variant, modules))
    return edgepose.export(model, target=target, precision="int8", out=out, quant=quant, log=None)


def _timings(bundles: dict, args) -> dict:
    import edgepose

    rts = {v: edgepose.load(b.path, threads=args.threads) for v, b in bundles.items()}
    try:
        return interleaved_infer_ms(rts, args.rounds, args.runs)
    finally:
        for rt in rts.values():
            rt.close()


def _coco_ap(bundle, coco, threads: int) -> str:
    import edgepose
    from edgepose.eval.evaluate import ap_with_interval

    with edgepose.load(bundle.path, threads=threads) as rt:
        ap, (lo, hi) = ap_with_interval(rt, coco)
    return f"{ap:.1f} ({lo:.0f}–{hi:.0f})"


def _gate(bundle) -> str:
    acc = bundle.manifest.get("accuracy") or {}
    if "ap_drop" not in acc:
        return "–"
    lo, hi = acc["ap_drop_interval95"]
    verdict = "passes" if acc["passed"] else "refused"
    return f"{acc['ap_drop']:.1f} ({lo:.1f}–{hi:.1f}), p50 {acc['keypoint_error_px_p50']:.1f} px, {verdict}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), help="registered models (embedded default weights)")
    ap.add_argument("--targets", nargs="+", default=["onnx", "openvino", "tflite"])
    ap.add_argument("--calib-sizes", nargs="+", type=int, default=[128], metavar="N",
                    help="calibration samples; several: one pair of INT8 bundles per size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100, help="timed calls per bundle and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--int8-modules", nargs="+", metavar="MODULE", help="one more INT8 bundle of these modules")
    ap.add_argument("--skip-all", action="store_true", help="no whole-network INT8 bundles")
    args = ap.parse_args()
    variants = [v for v in VARIANTS[1:] if not (args.skip_all and v == "int8 all")]
    variants += ["int8 given"] if args.int8_modules else []
    from edgepose.data.coco import CocoKeypoints
    from edgepose.demo.real import real_sources
    from edgepose.models import create

    sources = real_sources(Path(__file__).resolve().parents[2] / "shared")
    if sources is None:
        raise SystemExit("../shared/data (real-video, coco-mini) not found")
    coco = CocoKeypoints(sources[2], sources[2].parent)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model = create(name, weights="default").eval()
            for target in args.targets:
                bundles = {"fp32": _export(model, target, "fp32", Path(tmp) / f"{name}-{target}-fp32", sources)}
                for size, v in itertools.product(args.calib_sizes, variants):
                    label = v if len(args.calib_sizes) == 1 else f"{v}, {size} samples"
                    bundles[label] = _export(model, target, v, Path(tmp) / f"{name}-{target}-{v[5:]}-{size}",
                                             sources, size, args.int8_modules)
                ms = _timings(bundles, args)
                for v, b in bundles.items():
                    rows.append([name, target, v, _gate(b), _coco_ap(b, coco, args.threads), f"{ms[v]:.2f}",
                                 f"{ms['fp32'] / ms[v]:.2f}x"])
    print(f"# INT8 scope — {today()} — {machine()}\n")
    print(f"`.venv/bin/python benchmarks/int8_scope.py --models {' '.join(args.models)} --targets "
          f"{' '.join(args.targets)} --calib-sizes {' '.join(map(str, args.calib_sizes))} --threads {args.threads} "
          f"--runs {args.runs} --rounds {args.rounds}"
          + (f" --int8-modules {' '.join(args.int8_modules)}" if args.int8_modules else "")
          + (" --skip-all" if args.skip_all else "") + "`\n")
    print(table(["model", "target", "bundle", "label-free drop (95 % CI), verdict", "coco-mini AP (95 % CI)",
                 "infer ms", "vs fp32"], rows))


if __name__ == "__main__":
    main()
