"""SimCC: the codec's round trip, the in-graph decoder against it, and a few training steps through the INT8 gate
(the conformance suite exports simcc-mnv2s / simcc-r18 to every target with parity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgepose
from edgepose.codecs import get_codec
from edgepose.codecs.graph_simcc import SimCCDecode
from edgepose.data.sources import resolve_dataset
from edgepose.errors import ConfigError, InputError
from edgepose.heads import get_head
from edgepose.models import create
from edgepose.models.checkpoint import load_backbone_from
from edgepose.train.loop import TrainConfig, train
from edgepose.weights import default_checkpoint


def test_encode_decode_round_trip_within_half_a_bin():
    codec = get_codec("simcc", input_size=(96, 128), split_ratio=2.0, sigma=2.0)
    rng = np.random.default_rng(0)
    kps = np.concatenate([rng.uniform(0, 1, (17, 2)) * (95, 127), np.full((17, 1), 2.0)], axis=1)
    kps[3, 2] = 0  # unlabelled: no target, weight 0
    targets, weight = codec.encode(kps)
    assert targets.shape == (17, 192 + 256) and weight[3] == 0 and weight.sum() == 16
    out = codec.decode((targets[None, :, :192], targets[None, :, 192:]))  # a perfect model gives the targets
    err = np.abs(out[0, :, :2] - kps[:, :2])[weight > 0]
    assert err.max() <= 0.25 + 1e-6  # nearest of half-pixel bins
    # score: the lower axis peak, ≥ exp(-0.5² / (2 σ²)) for a joint half a bin off its nearest bin
    assert (out[0, weight > 0, 2] >= np.exp(-0.25 / 8) - 1e-6).all() and out[0, 3, 2] == 0


def test_graph_decoder_matches_the_codec_including_ties():
    codec = get_codec("simcc", input_size=(64, 96))
    rng = np.random.default_rng(1)
    sx, sy = rng.normal(size=(3, 17, 128)).astype(np.float32), rng.normal(size=(3, 17, 192)).astype(np.float32)
    sx[0, 0, [5, 9]] = 50.0  # a tie: both take the first maximum
    host = codec.decode((sx, sy))
    graph = SimCCDecode(codec)((torch.from_numpy(sx), torch.from_numpy(sy))).numpy()
    np.testing.assert_allclose(graph, host, atol=1e-6)
    assert host[0, 0, 0] == 2.5


def test_bad_vectors_and_parameters_name_what_was_expected():
    codec = get_codec("simcc", input_size=(64, 96))
    with pytest.raises(InputError, match=r"'simcc_y' must be \(N, K, 192\)"):
        codec.decode((np.zeros((1, 17, 128)), np.zeros((1, 17, 190))))
    with pytest.raises(ConfigError, match="split_ratio must be"):
        get_codec("simcc", split_ratio=0)
    near = get_head("simcc").well_conditioned([np.zeros((1, 17, 128)), np.zeros((1, 17, 192))], 1e-4)
    assert near.shape == (1, 17) and not near.any()  # flat vectors: every argmax is a tie


@pytest.mark.slow
def test_a_few_training_steps_then_int8_through_the_gate(tmp_path):
    """The trunk from the default model (same MobileNetV2 x0.5 at 96x128), the SimCC head trained for a few steps:
    enough for a non-zero AP, so the INT8 gate compares something."""
    torch.manual_seed(0)
    model = create("simcc-mnv2s")
    load_backbone_from(model, default_checkpoint("simplebaseline-mnv2s-edge"))
    coco = resolve_dataset("synthetic:128", "single", progress=False)
    data = get_head("simcc").train_dataset(coco, model.edgepose_meta, train=True, seed=0, flip_prob=0.0)
    config = TrainConfig(epochs=2, batch_size=32, lr=2e-3, threads=2, workers=0, progress=False)
    hist = train(model, data, config, log=None)
    assert hist["loss"][-1] < hist["loss"][0]
    bundle = edgepose.export(model, target="onnx", precision="int8", calib="synthetic:32", val="synthetic-val:100",
                             out=tmp_path / "int8", log=None, max_ap_drop=2.0)
    gate = bundle.manifest["accuracy"]
    assert gate["passed"] and gate["ap_reference"] > 1.0, gate  # the fp32 model finds people: the gate means something
    assert bundle.manifest["spec"]["kind"] == "simcc" and bundle.manifest["precision"] == "int8"
    with edgepose.load(bundle.path, verify=True) as rt:
        poses = rt(np.full((128, 96, 3), 90, np.uint8))
        assert poses.keypoints.shape == (1, 17, 3) and np.isfinite(poses.keypoints).all()
