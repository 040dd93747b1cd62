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


class MixedDataset(torch.utils.data.Dataset):
    """Every sample of ``real`` plus ``synthetic_count(len(real), ratio)`` of ``synthetic`` per epoch, a different
    window of the synthetic set each epoch. Both must come from the same head's ``train_dataset`` (same targets,
    loss and collate function); the training loop's ``epoch`` reaches both."""

    def __init__(self, real, synthetic, ratio: float):
        if synthetic is not None and getattr(real, "step_loss", None) != getattr(synthetic, "step_loss", None):
            raise ConfigError("MixedDataset needs two datasets of one head (the same step_loss); got "
                              f"{type(real).__name__} and {type(synthetic).__name__}")
        self.real, self.synthetic = real, synthetic
        self.num_synthetic = synthetic_count(len(real), ratio) if synthetic is not None else 0
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
        if self.synthetic is not None:
            self.synthetic.epoch = int(value)

    def __len__(self) -> int:
        return len(self.real) + self.num_synthetic

    def __getitem__(self, i: int):
        n = len(self.real)
        if i < n:
            return self.real[i]
        j = (self._epoch * self.num_synthetic + i - n) % len(self.synthetic)
        return self.synthetic[j]
