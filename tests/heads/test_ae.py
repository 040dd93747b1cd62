"""The associative-embedding head: targets and loss on synthetic multi-person scenes, both decode placements
through the head, and a few training steps through the INT8 gate (the conformance suite exports
higherhrnet-w16s / -w32 to every target with parity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgepose
from edgepose.data.sources import resolve_dataset
from edgepose.errors import ConfigError
from edgepose.heads import get_head
from edgepose.models import create
from edgepose.train.loop import TrainConfig, train
from edgepose.train.losses_ae import ae_tag_loss


def test_tag_loss_pulls_people_together_and_pushes_them_apart():
    tags = torch.zeros(1, 2, 4, 4)
    tags[0, :, 0, :] = 1.0  # person 0's joints on row 0 (tag 1), person 1's on row 3 (tag -1)
    tags[0, :, 3, :] = -1.0
    joints = torch.tensor([[[0, 1], [12, 13]] + [[0, 0]] * 2])  # (1, P=4, K=2) flat cells
    mask = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    pull, push = ae_tag_loss(tags, joints, mask)
    assert float(pull) == 0.0 and float(push) == pytest.approx(np.exp(-4.0))
    tags[0, 1, 0, 1] = 3.0  # person 0's second joint drifts: pull grows
    pull, _ = ae_tag_loss(tags, joints, mask)
    assert float(pull) == pytest.approx(0.5)  # tags 1 and 3 around their mean 2, averaged over the two people


def test_head_tables_and_placements():
    head = get_head("ae")
    codec = {"kind": "ae"}
    assert head.bottom_up and head.output_names(codec, "host") == ["heatmaps", "tags", "heatmaps_hr"]
    assert head.output_names(codec, "graph") == ["peaks", "peak_tags"]
    model = create("higherhrnet-w16s", input_size=(64, 64))
    assert model.edgepose_meta.kind == "ae" and model.edgepose_meta.codec["input_size"] == [64, 64]
    with pytest.raises(ConfigError, match="multiples of 32"):
        create("higherhrnet-w16s", input_size=(70, 64))


@pytest.mark.slow
def test_a_few_training_steps_then_int8_through_the_gate(tmp_path):
    torch.manual_seed(0)
    model = create("higherhrnet-w16s", input_size=(64, 64))
    coco = resolve_dataset("synthetic:48", "multi", progress=False)
    data = get_head("ae").train_dataset(coco, model.edgepose_meta, train=True, seed=0, flip_prob=0.0)
    images, targets = data.collate_fn([data[i] for i in range(4)])
    assert targets["heatmaps_hr"].shape == (4, 17, 32, 32) and targets["joints"].dtype == torch.int64
    hist = train(model, data, TrainConfig(epochs=3, batch_size=8, lr=2e-3, threads=1, workers=0, progress=False),
                 log=None)
    assert hist["loss"][-1] < hist["loss"][0]
    # a few steps find no one yet (AP ~ 0, see benchmarks/train_ae.py for a trained run): the gate runs end to end
    bundle = edgepose.export(model, target="onnx", precision="int8", calib="synthetic:16", val="synthetic-val:10",
                             out=tmp_path / "int8", log=None, max_ap_drop=2.0)
    assert bundle.manifest["accuracy"]["passed"], bundle.manifest["accuracy"]
    assert bundle.manifest["spec"]["kind"] == "ae" and bundle.manifest["precision"] == "int8"
    with edgepose.load(bundle.path, verify=True) as rt:
        poses = rt(np.full((64, 64, 3), 90, np.uint8))
        assert poses.keypoints.shape[1:] == (17, 3) and np.isfinite(poses.keypoints).all()
