"""Real-footage augmentation: blur, occlusion and box jitter change what they should and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.data.augment import TopDownTransform
from edgepose.data.augment_real import RealAugment, jitter_box, motion_blur, occlude, paste_person
from edgepose.errors import ConfigError, InputError


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((64, 48, 3), np.uint8)
    img[20:44, 10:38] = 200  # a bright block: blur spreads its edges
    return np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)


def test_motion_blur_spreads_edges_and_keeps_brightness():
    img = _image()
    out = motion_blur(img, np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    assert abs(float(out.mean()) - float(img.mean())) < 2.0  # a normalised kernel
    assert np.abs(np.diff(out.astype(float), axis=1)).max() < np.abs(np.diff(img.astype(float), axis=1)).max()


def test_occlusion_covers_part_of_the_image():
    img = _image()
    out = occlude(img, np.random.default_rng(2), max_patches=1, size=(0.25, 0.25))
    changed = (out != img).any(axis=2).mean()
    assert 0.0 < changed <= 0.25 * 0.25 + 1e-9


def test_box_jitter_stays_within_its_amount():
    rng = np.random.default_rng(3)
    box = np.array([100, 50, 200, 250], np.float32)
    for _ in range(200):
        j = jitter_box(box, rng, 0.1)
        assert (np.abs(j - box) <= 0.1 * np.array([100, 200, 100, 200]) + 1e-4).all()
        assert j[2] > j[0] and j[3] > j[1]


def test_pixel_augmentation_does_not_move_joints():
    """Blur and occlusion change the crop, never the keypoint targets (box jitter off)."""
    img = np.full((200, 160, 3), 90, np.uint8)
    kps = np.zeros((17, 3), np.float32)
    kps[:, 0], kps[:, 1], kps[:, 2] = np.linspace(40, 120, 17), np.linspace(30, 170, 17), 2
    box = [30, 20, 130, 180]
    plain = TopDownTransform((96, 128), train=True, rng=np.random.default_rng(5), flip_prob=0, color=False)
    real = TopDownTransform((96, 128), train=True, rng=np.random.default_rng(5), flip_prob=0, color=False,
                            real=RealAugment(blur_prob=1.0, occlude_prob=1.0, box_jitter=0.0))
    crop_a, kps_a, _ = plain(img, box, kps)
    crop_b, kps_b, _ = real(img, box, kps)
    np.testing.assert_array_equal(kps_a, kps_b)
    assert not np.array_equal(crop_a, crop_b)


def test_pasted_person_lands_beside_the_centre_and_keeps_its_shape():
    """The cut-out goes to the left or right of the crop's centre, scaled to 0.55-0.95 of the crop's height; pixels
    outside it stay as they were."""
    crop = np.full((192, 160, 3), 30, np.uint8)
    person = np.full((90, 40, 3), 220, np.uint8)
    sides = set()
    for seed in range(40):
        out = paste_person(crop, person, np.random.default_rng(seed))
        changed = (out != crop).any(axis=2)
        ys, xs = np.nonzero(changed)
        assert changed.any() and out.dtype == np.uint8
        assert abs(xs.mean() - 80) >= 0.1 * 160  # beside the centred person, not on top of them
        assert ys.max() - ys.min() + 1 <= 0.95 * 192 + 2  # at most 0.95 of the crop's height
        sides.add(bool(xs.mean() > 80))
        np.testing.assert_array_equal(out[~changed], crop[~changed])
    assert sides == {True, False}


def test_pasting_keeps_the_targets(shared_data):
    """A top-down sample with a pasted person has the same heatmap targets as without it, and another image."""
    from edgepose.data.coco import CocoKeypoints
    from edgepose.models import create
    from edgepose.train.datasets import TopDownDataset

    coco = CocoKeypoints(shared_data / "coco-mini" / "test_coco.json")
    meta = create("movenet-heatmap-edge").edgepose_meta
    plain = TopDownDataset(coco, meta, train=True, seed=3, real=RealAugment(blur_prob=0, occlude_prob=0))
    pasted = TopDownDataset(coco, meta, train=True, seed=3, real=RealAugment(blur_prob=0, occlude_prob=0,
                                                                              paste_prob=1.0))
    for i in (0, 5):
        (xa, ha, wa), (xb, hb, wb) = plain[i], pasted[i]
        assert np.array_equal(ha.numpy(), hb.numpy()) and np.array_equal(wa.numpy(), wb.numpy())
        assert not np.array_equal(xa.numpy(), xb.numpy())


def test_a_bottom_up_dataset_refuses_to_paste(shared_data):
    """A pasted person in a whole frame would be a person without labels: refused, not silently skipped."""
    from edgepose.data.coco import CocoKeypoints
    from edgepose.models import create
    from edgepose.train.datasets import BottomUpDataset

    coco = CocoKeypoints(shared_data / "coco-mini" / "test_coco.json")
    meta = create("movenet-centernet-edge").edgepose_meta
    with pytest.raises(ConfigError, match="movenet-centernet-edge is bottom-up .*; expected paste_prob 0"):
        BottomUpDataset(coco, meta, real=RealAugment(paste_prob=0.5))
    assert len(BottomUpDataset(coco, meta, real=RealAugment())) > 0


def test_a_degenerate_cut_out_is_refused():
    with pytest.raises(InputError, match=r"cut-out of at least 2x2 px; received \(1, 5, 3\)"):
        paste_person(np.zeros((64, 48, 3), np.uint8), np.zeros((1, 5, 3), np.uint8), np.random.default_rng(0))


@pytest.mark.parametrize("kw", [{"blur_prob": 1.5}, {"occlude_prob": -0.1}, {"box_jitter": 0.5},
                                {"paste_prob": 2.0}])
def test_bad_settings(kw):
    with pytest.raises(ConfigError, match="must be in"):
        RealAugment(**kw)
