"""The embedded default weights load and reach the accuracy the README states (on a small held-out set).

The thresholds are the README's numbers for the full held-out set minus a margin for the smaller sample;
see edgepose/weights/RECIPE.md for how the weights were trained and the full-set numbers.
"""

from __future__ import annotations

import pytest

from edgepose.data.sources import resolve_dataset
from edgepose.eval.evaluate import evaluate
from edgepose.models import create
from edgepose.runtimes.torch import TorchRuntime
from edgepose.weights import DEFAULTS, WEIGHTS_DIR

# model → minimum OKS AP on the first 100 synthetic-val images (README / RECIPE state the full-set numbers)
MIN_AP = {"simplebaseline-mnv2s-edge": 0.50, "centernet-mnv2s": 0.15}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default_weights_reach_the_stated_accuracy(name):
    model = create(name, weights="default")
    assert model.training is False
    coco = resolve_dataset("synthetic-val:100", model.edgepose_meta.kind, split="val", progress=False)
    with TorchRuntime(model, threads=2) as rt:
        stats = evaluate(rt, coco, progress=False)
    assert stats["AP"] >= MIN_AP[name], f"{name}: AP {stats['AP']:.3f} < {MIN_AP[name]}"


def test_default_weights_are_small_and_self_describing():
    import torch

    for name, file in DEFAULTS.items():
        path = WEIGHTS_DIR / file
        assert path.stat().st_size < 10 * 2**20
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["model"] == name and ckpt["info"]["epochs_done"] >= 1
