"""The distillation table: teacher, distilled students and synthetic-only models on real data, with 95 % intervals.

    .venv/bin/python benchmarks/distill.py --models movenet-thunder simplebaseline-mnv2s-edge STUDENT.pt ...
        [--threads 2]

Each model is scored (OKS AP, 95 % bootstrap interval over the images) on

- the coco-mini photos with COCO's labels (ground-truth boxes for top-down models, whole images for bottom-up ones);
- the held-out videos (Pose2Sim camera 4, single- and multi-person, and the Sports2D clip: whole videos that
  ``make weights`` never trains on) against the teacher's pseudo-labels — MoveNet MultiPose finds the people,
  Thunder reads their joints (``edgepose.distill.pseudo``, the same cached labels ``edgepose distill --val``
  writes).

A top-down model is given the labels' person boxes; a bottom-up one finds the people itself. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, today  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEOS = SHARED / "data" / "real-video"
HELD_OUT = [VIDEOS / n for n in ("pose2sim-singleperson-cam04.mp4", "pose2sim-multiperson-cam04.mp4",
                                 "sports2d-demo.mp4")]


def held_out_labels(threads: int | None):
    from edgepose.distill.pseudo import LabelOptions, Teacher, pseudo_label

    teacher = Teacher("movenet-multipose", "movenet-thunder", keypoints="coco", threads=threads)
    try:
        return pseudo_label(HELD_OUT, teacher, LabelOptions(), progress=False)[0]
    finally:
        teacher.close()


def score(name: str, sets: dict, threads: int | None) -> list:
    from edgepose.eval.evaluate import ap_with_interval
    from edgepose.models.checkpoint import load_model
    from edgepose.runtimes.torch import TorchRuntime

    model = load_model(name)
    row = [Path(name).name, model.edgepose_meta.kind]
    with TorchRuntime(model, threads=threads) as rt:
        for coco in sets.values():
            ap, (lo, hi) = ap_with_interval(rt, coco)
            row.append(f"{ap:.1f} [{lo:.1f}, {hi:.1f}]")
    return row


def main() -> None:
    from edgepose.data.coco import CocoKeypoints

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", required=True, help="model names (embedded weights) or checkpoints")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args()
    sets = {"coco-mini (COCO labels)": CocoKeypoints(SHARED / "data" / "coco-mini" / "test_coco.json"),
            "held-out videos (vs teacher)": held_out_labels(args.threads)}
    rows = [score(m, sets, args.threads) for m in args.models]
    print(f"{machine()}, {today()}\n")
    print(table(["model", "head", *(f"{k}: OKS AP [95 % CI]" for k in sets)], rows))


if __name__ == "__main__":
    main()
