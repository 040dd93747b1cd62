"""The training loop: Adam, linear warm-up then cosine decay, progress bar, atomic checkpoints.

Converges on a CPU: the embedded default models are trained with it in minutes (see
``edgepose/weights/RECIPE.md``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ConfigError
from edgepose.utils.options import check_threads
from edgepose.utils.progress import Progress


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    seed: int = 0
    workers: int = 1
    threads: int | None = None
    progress: bool = True

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0 (0 = load in this process), got {self.workers}")
        check_threads(self.threads)


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def make_loader(dataset, cfg: TrainConfig, shuffle: bool = True):
    import torch

    gen = torch.Generator().manual_seed(cfg.seed)
    collate = getattr(dataset, "collate_fn", None)
    return torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=shuffle, drop_last=shuffle,
                                       num_workers=cfg.workers, collate_fn=collate, generator=gen,
                                       persistent_workers=False)


def train(model, dataset, cfg: TrainConfig, *, out: str | Path | None = None, log=print) -> dict:
    """Train ``model`` on ``dataset`` (from ``edgepose.heads.get_head(kind).train_dataset(...)``, which gives it the
    head's ``step_loss`` and ``collate_fn``); returns a history dict.

    The checkpoint at ``out`` is rewritten atomically after every epoch.
    """
    import torch

    from edgepose.models.checkpoint import save_checkpoint

    cfg.validate()
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    step_loss = getattr(dataset, "step_loss", None)
    if step_loss is None:
        raise ConfigError(f"{type(dataset).__name__} has no step_loss; expected a dataset from "
                          f"edgepose.heads.get_head({model.edgepose_meta.kind!r}).train_dataset(coco, meta)")
    if len(dataset) < cfg.batch_size:
        cfg.batch_size = len(dataset)
    loader = make_loader(dataset, cfg)
    total = cfg.epochs * len(loader)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, min(cfg.warmup_steps, total // 5 + 1)))
    history: dict = {"loss": [], "epochs": cfg.epochs, "steps": total}
    bar = Progress(total, f"train {model.edgepose_meta.name}", enabled=cfg.progress)
    start = time.perf_counter()
    model.train()
    for epoch in range(cfg.epochs):
        dataset.epoch = epoch
        running = 0.0
        for batch in loader:
            loss, _parts = step_loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
            bar.update(postfix=f"epoch {epoch + 1}/{cfg.epochs} loss {float(loss.detach()):.4g}")
        history["loss"].append(running / max(1, len(loader)))
        if out is not None:
            info = {"epochs_done": epoch + 1, "train_seconds": round(time.perf_counter() - start, 1),
                    "config": {k: v for k, v in vars(cfg).items() if k != "progress"},
                    "loss": history["loss"]}
            save_checkpoint(model, out, info=info)
    bar.close()
    history["seconds"] = time.perf_counter() - start
    model.eval()
    return history
