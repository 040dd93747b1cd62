"""Measure how far decoded joints move when the crop changes by one grey level (the size of a rounding
difference between two OpenCV builds): shared by tests/codecs/test_weak_joints.py and
benchmarks/weak_joints.py."""

from __future__ import annotations

import numpy as np

from edgepose.data.coco import CocoKeypoints
from edgepose.pipeline.preprocess import to_tensor, topdown_crops


def coco_crops(json_path, spec, img_dir=None) -> np.ndarray:
    """One uint8 crop per ground-truth person box of a COCO-style file (crowds skipped)."""
    coco = CocoKeypoints(json_path, img_dir)
    crops = []
    for image_id in coco.image_ids:
        anns = [a for a in coco.annotations_for(image_id) if not a.get("iscrowd", 0) and a["bbox"][2] > 1]
        boxes = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        if len(boxes):
            crops.append(topdown_crops(coco.load_image(image_id), boxes.reshape(-1, 4), spec.input)[0])
    return np.concatenate(crops)


def motion(heatmaps_fn, codec, spec, crops: np.ndarray, *, trials: int, seed: int = 0) -> np.ndarray:
    """(joints × trials, 3) rows of (raw score, decoded score, motion in heatmap cells) of each joint when every
    crop value moves by -1, 0 or +1 grey level at random. ``heatmaps_fn``: input tensor → heatmaps (N, K, H, W)."""
    rng = np.random.default_rng(seed)
    base_maps = heatmaps_fn(to_tensor(crops, spec.input))
    base = codec.decode(base_maps)
    raw_score = base_maps.reshape(*base_maps.shape[:2], -1).max(axis=2)
    rows = []
    for _ in range(trials):
        noisy = np.clip(crops.astype(np.int16) + rng.integers(-1, 2, crops.shape), 0, 255).astype(np.uint8)
        moved = codec.decode(heatmaps_fn(to_tensor(noisy, spec.input)))
        cells = np.linalg.norm(moved[..., :2] - base[..., :2], axis=-1) / codec.stride
        rows.append(np.stack([raw_score, base[..., 2], cells], axis=-1).reshape(-1, 3))
    return np.concatenate(rows)
