"""CenterNetCodec: dense targets, encode → decode with perfect outputs, snapping, input checks, params."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepose.codecs import CenterNetCodec, codec_from_dict, get_codec
from edgepose.codecs.centernet import OUTPUT_NAMES, gaussian_radius
from edgepose.errors import ConfigError, InputError

K = 5


def make_codec(**kw: object) -> CenterNetCodec:
    params = {"input_size": (128, 96), "stride": 4, "num_keypoints": K, "max_people": 10}
    params.update(kw)
    return CenterNetCodec(**params)


def logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p)).astype(np.float32)


def perfect_outputs(targets: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Targets as the raw outputs of a perfect model (heatmaps as clipped logits)."""
    return [logit(targets[n]) if n.endswith("heatmap") else targets[n] for n in OUTPUT_NAMES]


def random_people(codec: CenterNetCodec, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, K, 3) keypoints and (count, 4) boxes inside the image, with person centres at least 4 cells
    apart and every joint in a cell of its own (joints sharing a cell share one kpt_subpixel target)."""
    rng = np.random.default_rng(seed)
    w, h = codec.input_size
    s = codec.stride
    for _ in range(1000):
        bw, bh = rng.uniform(24, 50, count), rng.uniform(24, 60, count)
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        boxes = np.stack([x0, y0, x0 + bw, y0 + bh], 1)
        kpts = np.empty((count, K, 3))
        for i, (ax, ay, bx, by) in enumerate(boxes / s):
            cells = [(cx, cy) for cx in range(int(np.ceil(ax)), int(bx)) for cy in range(int(np.ceil(ay)), int(by))]
            pick = np.asarray(cells)[rng.choice(len(cells), K, replace=False)]
            kpts[i, :, :2] = (pick + rng.uniform(0.02, 0.98, (K, 2))) * s
            kpts[i, :, 2] = rng.integers(1, 3, K)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / s
        d = np.abs(centres[:, None] - centres[None]).max(-1) + 100 * np.eye(count)
        flat = np.floor(kpts[..., :2] / s).reshape(-1, 2)
        if d.min() >= 4 and len(np.unique(flat, axis=0)) == count * K:
            return kpts, boxes
    raise RuntimeError("could not place people")


def match(boxes_true: np.ndarray, boxes_pred: np.ndarray) -> np.ndarray:
    """Index of the nearest predicted box (L-inf on corners) for each true box."""
    return np.abs(boxes_true[:, None] - boxes_pred[None]).max(-1).argmin(1)


def test_encode_targets_shapes_and_masks() -> None:
    codec = make_codec()
    kpts, boxes = random_people(codec, 3, seed=1)
    kpts[0, 2, 2] = 0  # unlabelled joint
    t = codec.encode(kpts, boxes)
    fw, fh = codec.feature_size
    expected = {"center_heatmap": 1, "center_offset": 2, "box_size": 2, "center_mask": 1, "kpt_offset": 2 * K,
                "kpt_offset_mask": 2 * K, "kpt_heatmap": K, "kpt_subpixel": 2, "kpt_subpixel_mask": 1}
    assert {n: a.shape for n, a in t.items()} == {n: (c, fh, fw) for n, c in expected.items()}
    assert all(a.dtype == np.float32 for a in t.values())
    assert t["center_mask"].sum() == 3 and t["center_heatmap"].max() == pytest.approx(1.0)
    assert t["kpt_offset_mask"].sum() == 2 * (3 * K - 1)
    assert t["kpt_subpixel_mask"].sum() == 3 * K - 1
    # The unlabelled joint has no offset target at person 0's centre cell and no heatmap peak of its own.
    c = (boxes[0, :2] + boxes[0, 2:]) / 2 / codec.stride
    cx, cy = int(c[0]), int(c[1])
    assert t["kpt_offset_mask"][4:6, cy, cx].sum() == 0 and t["kpt_offset_mask"][:4, cy, cx].all()
    np.testing.assert_allclose(t["center_offset"][:, cy, cx], c - (cx, cy), atol=1e-5)
    np.testing.assert_allclose(t["box_size"][:, cy, cx], (boxes[0, 2:] - boxes[0, :2]) / codec.stride, atol=1e-5)
    np.testing.assert_allclose(t["kpt_offset"][0:2, cy, cx], kpts[0, 0, :2] / codec.stride - (cx, cy), atol=1e-5)
    j = kpts[0, 1, :2] / codec.stride
    jx, jy = int(j[0]), int(j[1])
    assert t["kpt_heatmap"][1, jy, jx] == pytest.approx(1.0)
    np.testing.assert_allclose(t["kpt_subpixel"][:, jy, jx], j - (jx, jy), atol=1e-5)


def test_encode_skips_empty_boxes_and_off_map_centres() -> None:
    codec = make_codec()
    kpts = np.ones((2, K, 3)) * 10
    boxes = np.array([[10.0, 10.0, 10.0, 40.0], [-100.0, -100.0, -50.0, -60.0]])
    t = codec.encode(kpts, boxes)
    assert not t["center_mask"].any() and not t["center_heatmap"].any() and not t["kpt_offset_mask"].any()


@pytest.mark.parametrize("count", [1, 2, 3, 4])
@pytest.mark.parametrize("snap", [True, False])
def test_encode_decode_perfect_outputs(count: int, snap: bool) -> None:
    codec = make_codec(snap=snap)
    for seed in range(4):
        kpts, boxes = random_people(codec, count, seed=100 * count + seed)
        keypoints, scores, pred_boxes = codec.decode(perfect_outputs(codec.encode(kpts, boxes)))
        assert keypoints.shape == (1, 10, K, 3) and scores.shape == (1, 10) and pred_boxes.shape == (1, 10, 4)
        assert (scores[0] > 0.5).sum() == count
        assert np.all(np.diff(scores[0]) <= 0)  # sorted by score
        m = match(boxes, pred_boxes[0])
        assert sorted(m) == list(range(count))  # the detections are the top slots
        np.testing.assert_allclose(pred_boxes[0, m], boxes, atol=0.5)
        np.testing.assert_allclose(keypoints[0, m, :, :2], kpts[..., :2], atol=0.5)
        assert (keypoints[0, m, :, 2] > 0.99).all()


def test_snap_corrects_regression_error_with_subpixel() -> None:
    codec_snap, codec_reg = make_codec(snap=True), make_codec(snap=False)
    kpts, boxes = random_people(codec_snap, 3, seed=5)
    outs = perfect_outputs(codec_snap.encode(kpts, boxes))
    rng = np.random.default_rng(0)
    outs[3] = outs[3] + rng.choice([-1.5, 1.5], outs[3].shape).astype(np.float32)  # 1.5 feature px off
    snapped, _, pred_boxes = codec_snap.decode(outs)
    regressed, _, _ = codec_reg.decode(outs)
    m = match(boxes, pred_boxes[0])
    assert np.abs(regressed[0, m, :, :2] - kpts[..., :2]).max() > 5.0  # 1.5 cells * stride 4
    np.testing.assert_allclose(snapped[0, m, :, :2], kpts[..., :2], atol=0.5)


def test_snap_ignores_peaks_outside_the_box() -> None:
    codec = make_codec(snap=True)
    kpts, boxes = random_people(codec, 1, seed=3)
    t = codec.encode(kpts, boxes)
    outs = perfect_outputs(t)
    fw, fh = codec.feature_size
    outs[4][:] = logit(np.zeros((K, fh, fw)))
    outs[4][:, 0, 0] = 8.0  # a confident joint peak far outside the person's box
    keypoints, _, pred_boxes = codec.decode(outs)
    m = match(boxes, pred_boxes[0])
    np.testing.assert_allclose(keypoints[0, m, :, :2], kpts[..., :2], atol=0.5)  # regression kept


def test_decode_fixed_shapes_batch_dict_and_no_batch() -> None:
    codec = make_codec(max_people=7)
    kpts, boxes = random_people(codec, 2, seed=9)
    outs = perfect_outputs(codec.encode(kpts, boxes))
    batch = [np.stack([o, o]) for o in outs]
    k2, s2, b2 = codec.decode(batch)
    assert k2.shape == (2, 7, K, 3) and s2.shape == (2, 7) and b2.shape == (2, 7, 4)
    k1, s1, b1 = codec.decode(dict(zip(OUTPUT_NAMES, outs)))
    np.testing.assert_array_equal(k1[0], k2[1])
    np.testing.assert_array_equal(s1[0], s2[0])
    assert k1.dtype == np.float32 and s1.dtype == np.float32 and b1.dtype == np.float32


def test_decode_with_no_people_is_finite_and_low_scoring() -> None:
    codec = make_codec()
    outs = perfect_outputs(codec.encode(np.zeros((0, K, 3)), np.zeros((0, 4))))
    keypoints, scores, boxes = codec.decode(outs)
    assert np.isfinite(keypoints).all() and np.isfinite(boxes).all() and (scores < 0.01).all()


def test_decode_rejects_bad_outputs() -> None:
    codec = make_codec()
    fw, fh = codec.feature_size
    good = [np.zeros((c, fh, fw), np.float32) for c in codec.channels.values()]
    with pytest.raises(InputError, match="6 outputs"):
        codec.decode(good[:5])
    with pytest.raises(InputError, match="kpt_offset"):
        codec.decode(good[:3] + [np.zeros((K, fh, fw))] + good[4:])
    with pytest.raises(InputError, match="center_heatmap"):
        codec.decode([np.zeros((fh, fw))] + good[1:])
    with pytest.raises(InputError, match="lacks"):
        codec.decode(dict(zip(OUTPUT_NAMES[:5], good)))
    with pytest.raises(InputError, match="batch"):
        codec.decode([good[0][None]] + [np.stack([g, g]) for g in good[1:]])
    with pytest.raises(InputError, match="keypoints"):
        codec.encode(np.zeros((2, K)), np.zeros((2, 4)))
    with pytest.raises(InputError, match="boxes"):
        codec.encode(np.zeros((2, K, 3)), np.zeros((3, 4)))


def test_gaussian_radius_grows_with_box() -> None:
    radii = [gaussian_radius(s, s, 0.7) for s in (2, 5, 10, 20, 40)]
    assert all(r > 0 for r in radii) and np.all(np.diff(radii) > 0)
    assert gaussian_radius(10, 10, 0.9) < gaussian_radius(10, 10, 0.5)


def test_invalid_parameters() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        CenterNetCodec(input_size=(130, 96), stride=4)
    with pytest.raises(ConfigError, match="max_people"):
        CenterNetCodec(input_size=(16, 16), stride=4, max_people=17)
    with pytest.raises(ConfigError, match="min_overlap"):
        CenterNetCodec(min_overlap=1.5)
    with pytest.raises(ConfigError, match="num_keypoints"):
        CenterNetCodec(num_keypoints=0)


def test_to_dict_round_trip() -> None:
    codec = make_codec(kpt_sigma=1.5, snap=False, snap_max_dist=0.4)
    d = json.loads(json.dumps(codec.to_dict()))
    assert d["kind"] == "centernet"
    again = codec_from_dict(d)
    assert isinstance(again, CenterNetCodec) and again.to_dict() == codec.to_dict()
    assert get_codec("centernet", max_people=5).max_people == 5
    with pytest.raises(ConfigError, match="kind"):
        CenterNetCodec.from_dict({**d, "kind": "heatmap"})
