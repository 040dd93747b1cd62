"""Flip test: the runtime averages the decode of the crop and of its mirror image (joints swapped back)."""

from __future__ import annotations

import numpy as np

from edgepose.keypoints import COCO17
from edgepose.models import create
from edgepose.pipeline.preprocess import map_back, topdown_batch
from edgepose.runtimes.torch import TorchRuntime


def test_flip_test_is_the_mean_of_both_decodes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (160, 120, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 100, 150]], np.float32)
    with TorchRuntime(create("simplebaseline-mnv2s-edge", weights="default")) as rt:
        plain = rt(image, boxes=boxes)
        flipped = rt(image, boxes=boxes, flip_test=True)
        batch, mats = topdown_batch(image, boxes, rt.spec.input)
        a = rt.codec.decode(rt.infer(batch)[0])
        b = rt.codec.decode(rt.infer(np.ascontiguousarray(batch[..., ::-1]))[0])[:, COCO17.flip_index()]
        b[..., 0] = rt.spec.input.size[0] - 1 - b[..., 0]
    expected = map_back((a + b) / 2, mats)
    np.testing.assert_allclose(flipped.keypoints, expected, atol=1e-4)
    assert not np.allclose(flipped.keypoints[..., :2], plain.keypoints[..., :2])
