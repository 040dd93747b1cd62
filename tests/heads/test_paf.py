"""The PAF head (OpenPose-style bottom-up): its place among the heads, the model's two stages in training and one in
eval, and a few training steps through export with the INT8 gate (the conformance suite exports openpose-mnv2s to
every target with parity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgepose
from edgepose.data.sources import resolve_dataset
from edgepose.errors import InputError
from edgepose.heads import BottomUpHead, get_head
from edgepose.models import create
from edgepose.models.checkpoint import load_backbone_from
from edgepose.train.loop import TrainConfig, train
from edgepose.train.losses_paf import paf_loss
from edgepose.weights import default_checkpoint


def test_the_head_is_bottom_up_with_both_placements():
    head = get_head("paf")
    assert isinstance(head, BottomUpHead) and head.sample_mode == "multi" and head.trainable == ("paf",)
    meta = create("openpose-mnv2s", input_size=(64, 96)).edgepose_meta
    assert head.output_names(meta.codec, "host") == ["heatmaps", "pafs"]
    assert head.output_names(meta.codec, "graph") == ["peaks", "offsets", "pafs"]
    assert meta.codec["stride"] == 8 and len(meta.codec["limbs"]) == 19 and head.refines_in_graph(meta.codec)


def test_training_mode_returns_both_stages_and_the_loss_sums_them():
    torch.manual_seed(0)
    model = create("openpose-mnv2s", input_size=(64, 64))
    x = torch.randn(2, 3, 64, 64)
    stages = model.train()(x)
    assert len(stages) == 2 and [tuple(t.shape) for t in stages[1]] == [(2, 17, 8, 8), (2, 38, 8, 8)]
    hm, pafs = model.eval()(x)
    assert hm.shape == (2, 17, 8, 8) and pafs.shape == (2, 38, 8, 8)
    targets = {"heatmaps": torch.rand(2, 17, 8, 8), "pafs": torch.rand(2, 38, 8, 8), "mask": torch.ones(2, 1, 8, 8)}
    total, parts = paf_loss(stages, targets)
    assert set(parts) == {"heatmaps_s1", "pafs_s1", "heatmaps_s2", "pafs_s2"}
    assert abs(float(total) - sum(parts.values())) < 1e-3 * float(total)
    targets["mask"] = torch.zeros(2, 1, 8, 8)
    assert float(paf_loss(stages, targets)[0]) == 0.0  # masked cells do not count
    with pytest.raises(InputError, match="a list of \\(heatmaps, pafs\\) per stage"):
        paf_loss(stages[1][0], targets)


@pytest.mark.slow
def test_a_few_training_steps_then_int8_through_the_gate(tmp_path):
    """The trunk from the default top-down model (MobileNetV2 x0.5), a few steps on multi-person scenes at 128x128:
    the loss falls; the INT8 ONNX bundle passes its accuracy gate and runs."""
    torch.manual_seed(0)
    model = create("openpose-mnv2s", input_size=(128, 128))
    load_backbone_from(model, default_checkpoint("simplebaseline-mnv2s-edge"))
    coco = resolve_dataset("synthetic:48", "multi", progress=False)
    data = get_head("paf").train_dataset(coco, model.edgepose_meta, train=True, seed=0, flip_prob=0.0)
    hist = train(model, data, TrainConfig(epochs=3, batch_size=16, lr=3e-3, warmup_steps=1, threads=1, workers=0,
                                          progress=False), log=None)
    assert hist["loss"][-1] < hist["loss"][0], hist["loss"]
    bundle = edgepose.export(model, target="onnx", precision="int8", calib="synthetic:16", val="synthetic-val:20",
                             out=tmp_path / "int8", log=None, max_ap_drop=2.0)
    gate = bundle.manifest["accuracy"]
    assert gate["passed"], gate
    assert bundle.manifest["spec"]["kind"] == "paf" and bundle.manifest["precision"] == "int8"
    with edgepose.load(bundle.path, verify=True) as rt:
        poses = rt(np.full((128, 128, 3), 90, np.uint8))
        assert poses.keypoints.shape[1:] == (17, 3) and np.isfinite(poses.keypoints).all()
