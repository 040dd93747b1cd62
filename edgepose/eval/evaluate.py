"""Evaluate any Runtime (PyTorch reference or a deployed bundle) on a COCO-format dataset.

Top-down models get the ground-truth person boxes (or detections); bottom-up models see the whole
image. Results go through pycocotools' OKS AP (:func:`edgepose.eval.coco_eval.coco_keypoint_eval`),
plus the mean keypoint error in pixels against the ground truth it was matched to.
"""

from __future__ import annotations

import numpy as np

from edgepose.data.coco import CocoKeypoints
from edgepose.errors import DataError
from edgepose.pipeline.preprocess import usable_boxes
from edgepose.utils.progress import Progress

# COCO AP ranks detections by score, so low-scoring people only add recall: keep them for evaluation.
EVAL_SCORE_THRESHOLD = 0.05


def _gt_boxes(coco: CocoKeypoints, image_id: int) -> np.ndarray:
    boxes = [a["bbox"] for a in coco.annotations_for(image_id)
             if not a.get("iscrowd", 0) and a.get("num_keypoints", 1) > 0]
    arr = np.asarray(boxes, np.float32).reshape(-1, 4)
    arr[:, 2:] += arr[:, :2]
    return arr


def predict_dataset(rt, coco: CocoKeypoints, *, detections: dict | None = None, flip_test: bool = False,
                    max_images: int | None = None, progress: bool = True) -> list[dict]:
    """Run ``rt`` over the dataset's images → COCO keypoint results (one entry per person)."""
    ids = list(coco.image_ids)[: max_images or None]
    results: list[dict] = []
    skipped: list[int] = []
    bar = Progress(len(ids), f"eval {getattr(rt, 'backend', 'runtime')}", enabled=progress)
    for image_id in ids:
        image = coco.load_image(image_id)
        if rt.spec.bottom_up:
            poses = rt(image, score_threshold=EVAL_SCORE_THRESHOLD)
        else:
            if detections is not None:
                dets = detections.get(image_id, [])
                boxes = np.asarray([list(b) + [s] for b, s in dets], np.float32).reshape(-1, 5)
                boxes = boxes[usable_boxes(boxes[:, :4], image.shape)]  # a detector's empty or off-image box
            else:
                boxes = _usable(_gt_boxes(coco, image_id), image.shape, skipped, image_id)
            if len(boxes) == 0:
                bar.update()
                continue
            poses = rt(image, boxes=boxes, flip_test=flip_test)
        results += poses.to_coco_results(image_id)
        bar.update()
    bar.close()
    if skipped:
        import warnings

        warnings.warn(f"eval: {len(skipped)} ground-truth box(es) with no area or outside their image skipped "
                      f"(images {sorted(set(skipped))[:5]}{' ...' if len(set(skipped)) > 5 else ''})", stacklevel=2)
    return results


def _usable(boxes: np.ndarray, shape, skipped: list, image_id: int) -> np.ndarray:
    """GT boxes a crop can use (positive size, overlapping the image), as training keeps them; the others are
    counted in ``skipped``."""
    ok = usable_boxes(boxes, shape)
    skipped.extend([image_id] * int((~ok).sum()))
    return boxes[ok]


def evaluate(rt, coco: CocoKeypoints, *, detections: dict | None = None, flip_test: bool = False,
             max_images: int | None = None, progress: bool = True, keep_matches: bool = False) -> dict:
    """OKS AP/AR of ``rt`` on ``coco`` (restricted to the first ``max_images`` images when given);
    ``keep_matches`` adds the per-image match records for :mod:`edgepose.eval.bootstrap`."""
    from edgepose.eval.coco_eval import coco_keypoint_eval
    from edgepose.keypoints import get_schema

    if len(coco.image_ids) == 0:
        raise DataError(f"{coco.ann_file} has no images; expected at least one to evaluate on")
    if get_schema(rt.spec.keypoints).num_keypoints != coco.num_keypoints:
        raise DataError(f"the model predicts {rt.spec.keypoints!r} keypoints "
                        f"({get_schema(rt.spec.keypoints).num_keypoints}), {coco.ann_file} holds "
                        f"{coco.schema.name!r} ones ({coco.num_keypoints}); expected data of the model's schema")
    results = predict_dataset(rt, coco, detections=detections, flip_test=flip_test,
                              max_images=max_images, progress=progress)
    gt = coco.to_coco_dict()
    if max_images:
        keep = set(list(coco.image_ids)[:max_images])
        gt = dict(gt, images=[i for i in gt["images"] if i["id"] in keep],
                  annotations=[a for a in gt["annotations"] if a["image_id"] in keep])
    sigmas = get_schema(rt.spec.keypoints).sigmas
    stats = coco_keypoint_eval(gt, results, sigmas=np.asarray(sigmas), keep_matches=keep_matches)
    stats["num_images"] = len(gt["images"])
    stats["num_results"] = len(results)
    return stats


def ap_with_interval(rt, coco: CocoKeypoints, *, detections: dict | None = None, resamples: int = 1000,
                     seed: int = 0) -> tuple[float, tuple[float, float]]:
    """OKS AP of ``rt`` on ``coco`` and its 95 % bootstrap interval over the images, both in AP points (0..100)."""
    from edgepose.eval.bootstrap import ap_interval

    stats = evaluate(rt, coco, detections=detections, progress=False, keep_matches=True)
    if stats.get("matches") is None:
        return 100 * stats["AP"], (float("nan"), float("nan"))
    lo, hi = ap_interval(stats["matches"], resamples=resamples, seed=seed)
    return 100 * stats["AP"], (100 * lo, 100 * hi)
