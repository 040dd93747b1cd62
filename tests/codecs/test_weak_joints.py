"""Weak joints: one grey level of noise must not move a joint that the decoder scores as confident."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.codecs import codec_from_dict
from edgepose.golden import SCORE_MIN
from edgepose.models import create
from edgepose.runtimes.spec import ModelSpec
from tests.codecs.weak_joints import coco_crops, motion


@pytest.fixture(scope="module")
def measured(shared_data):
    import torch

    model = create("simplebaseline-mnv2s-edge", weights="default").eval()
    spec = ModelSpec.from_meta(model.edgepose_meta)
    codec = codec_from_dict(spec.codec)
    assert codec.peak_margin > 0  # the zoo's heatmap models mark ambiguous peaks

    def heatmaps(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    crops = coco_crops(shared_data / "coco-mini" / "test_coco.json", spec)
    return motion(heatmaps, codec, spec, crops, trials=4)


def test_confident_joints_move_at_most_one_heatmap_cell(measured):
    raw, score, cells = measured.T
    confident = score >= SCORE_MIN
    assert confident.sum() >= 0.3 * len(score)  # not vacuous: most real joints stay confident
    assert cells[confident].max() <= 1.0, f"a joint scoring >= {SCORE_MIN} moved {cells[confident].max():.2f} cells"


def test_lowered_scores_are_the_ambiguous_ones(measured):
    raw, score, cells = measured.T
    assert np.all(score <= raw + 1e-6)  # the margin only ever lowers a score
    lowered = score < raw - 1e-6
    assert 0 < lowered.sum() < len(score)
    # joints that moved more than a cell under one grey level had their score lowered (or were weak already)
    jumped = cells > 1.0
    assert np.all(lowered[jumped] | (raw[jumped] < SCORE_MIN))


@pytest.mark.parametrize("method", ["argmax", "dark", "udp"])
def test_two_equal_peaks_score_zero_in_numpy_and_in_the_graph(method):
    import torch

    from edgepose.codecs.graph_heatmap import HeatmapDecode
    from edgepose.codecs.heatmap import HeatmapCodec

    codec = HeatmapCodec((96, 128), (24, 32), method=method, peak_margin=0.2)
    one, _ = codec.encode(np.array([[40.0, 50.0, 1.0]] * 3, np.float32))
    two = np.maximum(one, np.roll(one, (12, 8), axis=(1, 2)))  # the same peak again, 12 rows and 8 columns away
    near, _ = codec.encode(np.array([[[40.0, 50.0, 1.0]] * 3, [[48.0, 50.0, 1.0]] * 3], np.float32))
    maps = np.stack([one, two, 0.9 * near])  # one peak; two apart; two 2 cells apart (one plateau, 0.9 high)
    for decoded in (codec.decode(maps), HeatmapDecode(codec)(torch.from_numpy(maps)).numpy()):
        assert np.allclose(decoded[0, :, 2], one.max(axis=(1, 2)), atol=1e-6)  # a lone peak keeps its score
        assert np.allclose(decoded[1, :, 2], 0.0, atol=1e-6)  # a coin toss scores nothing
        assert np.all(decoded[2, :, 2] < 0.9 * 0.5)
    rng = np.random.default_rng(0)
    noisy = (maps + 0.05 * rng.random(maps.shape)).astype(np.float32)
    graph = HeatmapDecode(codec)(torch.from_numpy(noisy)).numpy()
    np.testing.assert_allclose(graph[..., 2], codec.decode(noisy)[..., 2], atol=1e-5)
