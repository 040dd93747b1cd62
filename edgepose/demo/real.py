"""The demo's real models: Google's MoveNet ports through the same chain, on real pixels.

Each model in ``DemoConfig.real_models`` (MultiPose on whole frames, Lightning on person boxes) is scored in
PyTorch and as every bundle on the coco-mini photos with ground-truth boxes (OKS AP with its 95 % bootstrap
interval over the photos). Its INT8 bundles are calibrated on frames sampled evenly across whole real videos
(``CALIB_VIDEOS``) and gated label-free on other, held-out videos (``VAL_VIDEOS``): the fp32 port's own poses
on those frames are the reference (see :mod:`edgepose.calibration.gate`).
"""

from __future__ import annotations

from pathlib import Path

# Whole videos (cameras), never frames of one video on both sides: calibration ...
CALIB_VIDEOS = ("opencv-vtest.avi", "pose2sim-singleperson-cam01.mp4", "pose2sim-singleperson-cam02.mp4",
                "pose2sim-multiperson-cam01.mp4", "pose2sim-multiperson-cam02.mp4")
# ... and held out for the label-free gate (another camera of each Pose2Sim scene, and the Sports2D clip)
VAL_VIDEOS = ("pose2sim-singleperson-cam04.mp4", "pose2sim-multiperson-cam04.mp4", "sports2d-demo.mp4")
VAL_FRAMES = 60  # label-free gate frames, spread over the held-out videos
# The label-free gate scores the INT8 bundle against the fp32 port's own poses, which score 100 by construction:
# every joint INT8 moves off a confident reference joint costs AP. Google's own INT8 TFLite of Lightning scores
# 83.5 against the fp32 port on 100 held-out frames (drop 16.5, 95 % interval 11.4 to 22.3; docs/benchmarks.md),
# so the demo holds MoveNet's INT8 bundles to "no worse than Google's own INT8" rather than to 1 point.
REAL_MAX_AP_DROP = 20.0


def real_sources(shared: Path | None) -> tuple[list[str], list[str], Path] | None:
    """(calibration videos, held-out videos, coco-mini annotation file), or None when any is missing."""
    if shared is None:
        return None
    videos = shared / "data" / "real-video"
    ann = shared / "data" / "coco-mini" / "test_coco.json"
    calib = [videos / v for v in CALIB_VIDEOS]
    val = [videos / v for v in VAL_VIDEOS]
    if not ann.is_file() or not all(p.is_file() for p in [*calib, *val]):
        return None
    return [str(p) for p in calib], [str(p) for p in val], ann


def real_models_rows(cfg, torch_ap: dict[str, float], model_rows) -> list:
    """Rows of every real model × target × precision (``model_rows`` is the demo's exporter); fills
    ``torch_ap``, ``cfg.torch_ci`` and ``cfg.ap_data``. Nothing without the shared real data."""
    from edgepose.data.coco import CocoKeypoints
    from edgepose.eval.evaluate import ap_with_interval
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    sources = real_sources(cfg.shared)
    if sources is None or not cfg.real_models:
        if cfg.real_models:
            cfg.log("real models skipped: ../shared/data (coco-mini, real-video) not found")
        return []
    calib, val, ann = sources
    coco = CocoKeypoints(ann, ann.parent)
    label = f"{cfg.real_data} ({len(coco.image_ids)} photos, ground-truth boxes)"
    int8 = {"calib": calib, "calib_size": cfg.real_calib_size, "val": val, "val_size": VAL_FRAMES,
            "max_ap_drop": REAL_MAX_AP_DROP}
    rows = []
    for name in cfg.real_models:
        model = create(name, weights="default")
        with TorchRuntime(model, threads=cfg.threads) as rt:
            torch_ap[name], cfg.torch_ci[name] = ap_with_interval(rt, coco)
        cfg.ap_data[name] = label
        cfg.log(f"{name}: PyTorch fp32 AP {torch_ap[name]:.1f} on {label}")
        rows += model_rows(cfg, name, model, lambda rt: ap_with_interval(rt, coco), int8)
    return rows
