"""Real and synthetic training samples in one epoch (``edgepose distill --synthetic-ratio``)."""

from __future__ import annotations

import torch

from edgepose.errors import ConfigError


def synthetic_count(real: int, ratio: float) -> int:
    """How many synthetic samples join ``real`` real ones so that they are ``ratio`` of the epoch."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"--synthetic-ratio must be in [0, 1) (the share of synthetic samples in an epoch), "
                          f"got {ratio}")
    return round(ratio / (1.0 - ratio) * real)


def sample_videos(dataset) -> list[str]:
    """The video (COCO image field ``video``, written by :mod:`edgepose.distill.pseudo`) of each sample of a
    top-down (one sample per person) or bottom-up (one per image) training dataset; '' where there is none."""
    ids = [inst.image_id for inst in dataset.instances] if hasattr(dataset, "instances") else dataset.image_ids
    return [str(dataset.coco.image_info(i).get("video", "")) for i in ids]


def per_video_cap(videos: list[str], cap: int | None, epoch: int, seed: int) -> list[int]:
    """Indices of at most ``cap`` samples of each video (a seeded random subset, new each epoch), in order; every
    index when ``cap`` is None. One long clip then cannot outweigh the other footage."""
    import numpy as np

    if cap is None:
        return list(range(len(videos)))
    if cap < 1:
        raise ConfigError(f"--max-per-video must be >= 1, got {cap}")
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(videos):
        groups.setdefault(v, []).append(i)
    rng = np.random.default_rng([seed, epoch, 7])
    keep: list[int] = []
    for video in sorted(groups):
        idx = groups[video]
        keep += idx if len(idx) <= cap else [idx[j] for j in rng.choice(len(idx), cap, replace=False)]
    return sorted(keep)


class MixedDataset(torch.utils.data.Dataset):
    """The samples of ``real`` (at most ``max_per_video`` of each video per epoch) plus
    ``synthetic_count(n_real, ratio)`` of ``synthetic``, a different window of the synthetic set each epoch. Both
    must come from the same head's ``train_dataset`` (same targets, loss and collate function); the training loop's
    ``epoch`` reaches both. The length is fixed: the same number of real samples every epoch."""

    def __init__(self, real, synthetic, ratio: float, *, max_per_video: int | None = None, seed: int = 0):
        if synthetic is not None and getattr(real, "step_loss", None) != getattr(synthetic, "step_loss", None):
            raise ConfigError("MixedDataset needs two datasets of one head (the same step_loss); got "
                              f"{type(real).__name__} and {type(synthetic).__name__}")
        self.real, self.synthetic, self.max_per_video, self.seed = real, synthetic, max_per_video, seed
        self._videos = sample_videos(real) if max_per_video is not None else None
        self._real_idx = per_video_cap(self._videos, max_per_video, 0, seed) if self._videos else list(range(len(real)))
        self.num_real = len(self._real_idx)
        self.num_synthetic = synthetic_count(self.num_real, ratio) if synthetic is not None else 0
        if self.num_synthetic and len(synthetic) == 0:
            raise ConfigError("--synthetic-ratio > 0 with an empty synthetic set; expected synthetic samples")
        self.step_loss, self.collate_fn = real.step_loss, real.collate_fn
        self._epoch = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch = self.real.epoch = int(value)
        if self._videos is not None:
            self._real_idx = per_video_cap(self._videos, self.max_per_video, self._epoch, self.seed)
        if self.synthetic is not None:
            self.synthetic.epoch = int(value)

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def __getitem__(self, i: int):
        n = self.num_real
        if i < n:
            return self.real[self._real_idx[i]]
        j = (self._epoch * self.num_synthetic + i - n) % len(self.synthetic)
        return self.synthetic[j]
