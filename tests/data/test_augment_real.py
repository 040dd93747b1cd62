"""Real-footage augmentation: blur, occlusion and box jitter change what they should and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.data.augment import TopDownTransform
from edgepose.data.augment_real import RealAugment, jitter_box, motion_blur, occlude
from edgepose.errors import ConfigError


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


@pytest.mark.parametrize("kw", [{"blur_prob": 1.5}, {"occlude_prob": -0.1}, {"box_jitter": 0.5}])
def test_bad_settings(kw):
    with pytest.raises(ConfigError, match="must be in"):
        RealAugment(**kw)
