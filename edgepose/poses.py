"""The result type every runtime returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Poses:
    """Poses found in one image, in original-image pixels.

    keypoints (N, K, 3): x, y, score; scores (N,): person scores; boxes (N, 4): xyxy.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def empty(cls, num_keypoints: int) -> Poses:
        return cls(np.zeros((0, num_keypoints, 3), np.float32), np.zeros((0,), np.float32),
                   np.zeros((0, 4), np.float32))

    def to_coco_results(self, image_id: int, category_id: int = 1) -> list[dict]:
        """Standard COCO keypoint results entries (one per person)."""
        return [{"image_id": int(image_id), "category_id": category_id,
                 "keypoints": [round(float(v), 3) for v in kps.reshape(-1)], "score": float(s)}
                for kps, s in zip(self.keypoints, self.scores)]
