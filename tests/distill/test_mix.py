"""Real + synthetic epochs: the synthetic share, a new synthetic window each epoch, and the ratio's range."""

from __future__ import annotations

import pytest

from edgepose.distill.mix import MixedDataset, synthetic_count
from edgepose.errors import ConfigError


class _Items:
    def __init__(self, tag: str, n: int, step_loss=None):
        self.tag, self.n, self.epoch = tag, n, 0
        self.step_loss, self.collate_fn = step_loss, None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        assert 0 <= i < self.n
        return (self.tag, i, self.epoch)


def _loss(model, batch):
    return 0.0, {}


def test_share_and_windows():
    assert synthetic_count(300, 0.25) == 100 and synthetic_count(300, 0.0) == 0
    mix = MixedDataset(_Items("real", 6, _loss), _Items("syn", 5, _loss), ratio=0.25)
    assert len(mix) == 8 and mix.num_synthetic == 2
    assert [mix[i][0] for i in range(8)] == ["real"] * 6 + ["syn"] * 2
    seen = []
    for epoch in range(3):
        mix.epoch = epoch
        assert mix.real.epoch == mix.synthetic.epoch == epoch  # augmentation seeds follow the epoch
        seen += [mix[i][1] for i in (6, 7)]
    assert seen == [0, 1, 2, 3, 4, 0]  # consecutive windows, wrapping around the synthetic set


def test_real_only_and_errors():
    mix = MixedDataset(_Items("real", 4, _loss), None, ratio=0.5)
    assert len(mix) == 4 and mix.step_loss is _loss
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match=r"--synthetic-ratio must be in \[0, 1\)"):
            synthetic_count(10, bad)
    with pytest.raises(ConfigError, match="two datasets of one head"):
        MixedDataset(_Items("real", 4, _loss), _Items("syn", 4, lambda m, b: None), ratio=0.5)


def test_per_video_cap_balances_long_clips():
    from edgepose.distill.mix import per_video_cap

    videos = ["long"] * 50 + ["short"] * 5
    picks = [per_video_cap(videos, 10, epoch, seed=0) for epoch in range(3)]
    for p in picks:
        assert len(p) == 15 and sum(videos[i] == "short" for i in p) == 5 and p == sorted(p)
    assert picks[0] != picks[1]  # a new subset of the long clip each epoch
    assert per_video_cap(videos, None, 0, 0) == list(range(55))
    with pytest.raises(ConfigError, match="--max-per-video must be >= 1"):
        per_video_cap(videos, 0, 0, 0)


def test_mixed_dataset_caps_real_samples_per_video():
    class _Coco:
        def image_info(self, i):
            return {"video": "a" if i < 8 else "b"}

    real = _Items("real", 10, _loss)
    real.coco, real.image_ids = _Coco(), list(range(10))
    mix = MixedDataset(real, None, 0.0, max_per_video=3)
    assert len(mix) == mix.num_real == 5  # 3 of video a's 8, both of b's
    assert sum(mix[i][1] >= 8 for i in range(5)) == 2
