"""Weak joints under one grey level of input noise: how far decoded joints move, by score, with and without the
heatmap decoders' peak-distinctness score (``peak_margin``).

    .venv/bin/python benchmarks/weak_joints.py [--trials 10] [--calib ../shared/data/real-video]

The default top-down model (simplebaseline-mnv2s-edge) as fp32 and INT8 bundles (ONNX Runtime, OpenVINO;
host decode, so the raw heatmaps can be decoded both ways). Crops: every ground-truth person box of coco-mini
and posetrack18-mini. Each trial adds -1, 0 or +1 grey level at random to every crop value (what a different
OpenCV build's rounding does, at most) and decodes again; motion is in heatmap cells (stride 4 input px). Also the
OKS AP of the fp32 bundle with the margin off and on (synthetic-val, and coco-mini on its ground-truth boxes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import machine, table, today  # noqa: E402

from tests.codecs.weak_joints import coco_crops, motion  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SETS = [(DATA / "coco-mini" / "test_coco.json", None),
        (DATA / "posetrack18-mini" / "annotations" / "test_posetrack18_val.json", DATA / "posetrack18-mini")]
SCORE = 0.3
BUNDLES = [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "int8")]


def rows_for(label: str, rt, crops: np.ndarray, trials: int) -> list[list]:
    from edgepose.codecs import codec_from_dict

    out = []
    for margin in (0.0, rt.spec.codec.get("peak_margin", 0.0)):
        codec = codec_from_dict(dict(rt.spec.codec, peak_margin=margin))
        _, score, cells = motion(lambda x: rt.infer(x)[0], codec, rt.spec, crops, trials=trials).T
        conf = score >= SCORE
        c = cells[conf]
        out.append([label, "on" if margin else "off", len(score), f"{100 * conf.mean():.1f}",
                    f"{np.percentile(c, 50):.3f}", f"{np.percentile(c, 99):.2f}", f"{c.max():.2f}",
                    f"{100 * (c > 1).mean():.2f}", f"{cells.max():.1f}",
                    f"{score[cells > 1].max(initial=0.0):.2f}"])
    return out


def ap_rows(rt) -> list[list]:
    """OKS AP of the fp32 bundle with the margin off and on: the accuracy the lowered scores cost."""
    from edgepose.data.coco import CocoKeypoints
    from edgepose.data.sources import resolve_dataset
    from edgepose.eval.evaluate import evaluate

    sets = {"synthetic-val": resolve_dataset("synthetic-val", "single", progress=False),
            "coco-mini (GT boxes)": CocoKeypoints(SETS[0][0])}
    rows, own = [], dict(rt.spec.codec)
    for margin in (0.0, own.get("peak_margin", 0.0)):
        rt.spec.codec, rt._codec = dict(own, peak_margin=margin), None  # the runtime rebuilds its codec from this
        rows.append(["on" if margin else "off",
                     *(f"{100 * evaluate(rt, coco, progress=False)['AP']:.2f}" for coco in sets.values())])
    rt.spec.codec, rt._codec = own, None
    return [["peak margin", *sets]] + rows


def main() -> None:
    import edgepose
    from edgepose.models import create

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--calib", default=str(DATA / "real-video"))
    args = ap.parse_args()
    model = create("simplebaseline-mnv2s-edge", weights="default")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for target, precision in BUNDLES:
            kw = {} if precision != "int8" else dict(calib=args.calib, val="synthetic-val:100",
                                                     allow_accuracy_drop=True)
            b = edgepose.export(model, target=target, precision=precision, decode="host",
                                out=Path(tmp) / f"{target}-{precision}", log=None, **kw)
            with edgepose.load(b.path, threads=2) as rt:
                crops = np.concatenate([coco_crops(ann, rt.spec, root) for ann, root in SETS])
                rows += rows_for(f"{target} {precision}", rt, crops, args.trials)
                if precision == "fp32":
                    aps = ap_rows(rt)
    print(f"{today()} · {machine()} · {len(crops)} person crops × {args.trials} trials")
    print(table(["bundle", "peak margin", "joints", f"% scoring >= {SCORE}", "p50 cells", "p99 cells",
                 "max cells", "% moved > 1 cell", "max cells (all joints)",
                 "best score that moved > 1 cell"], rows))
    print("\nOKS AP of the onnx fp32 bundle (host decode):")
    print(table(aps[0], aps[1:]))


if __name__ == "__main__":
    main()
