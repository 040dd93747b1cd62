"""Evaluation: COCO OKS AP via pycocotools (imported lazily), PCK / PCKh, results-file writer."""

from edgepose.eval.coco_eval import (
    STAT_NAMES,
    coco_keypoint_eval,
    poses_to_coco_results,
    write_results_json,
)
from edgepose.eval.pck import pck, pck_bbox, pckh

__all__ = [
    "STAT_NAMES",
    "coco_keypoint_eval",
    "pck",
    "pck_bbox",
    "pckh",
    "poses_to_coco_results",
    "write_results_json",
]
