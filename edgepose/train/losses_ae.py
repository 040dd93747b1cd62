"""HigherHRNet / associative-embedding losses.

- ``ae_tag_loss``: Newell et al.'s grouping loss — pull (each person's joint tags towards their mean) and push
  (``exp(-d²)`` between the mean tags of two people of one image), both averaged, vectorised over the batch.
- ``ae_loss``: MSE on the heatmaps at 1/4 and 1/2 plus the weighted pull and push terms.
"""

from __future__ import annotations

import torch

AE_WEIGHTS = {"heatmaps": 1.0, "heatmaps_hr": 1.0, "pull": 1e-3, "push": 1e-3}


def ae_tag_loss(tags: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """tags (N, K·D, H, W) (channel k·D + d); joints (N, P, K) flat cell indices; mask (N, P, K) 1 where labelled.
    → (pull, push), each averaged over the images' people / pairs of people."""
    n, kd, h, w = tags.shape
    _, p, k = joints.shape
    d = kd // k
    flat = tags.reshape(n, k, d, h * w)
    idx = joints.permute(0, 2, 1).unsqueeze(2).expand(n, k, d, p)  # (N, K, D, P)
    t = torch.gather(flat, 3, idx).permute(0, 3, 1, 2)  # (N, P, K, D)
    m = mask.unsqueeze(3)
    count = mask.sum(2)  # (N, P)
    valid = (count > 0).float()
    mean = (t * m).sum(2) / count.clamp(min=1).unsqueeze(2)  # (N, P, D)
    pull_p = (((t - mean.unsqueeze(2)) ** 2).sum(3) * mask).sum(2) / count.clamp(min=1)  # (N, P)
    people = valid.sum(1)  # (N,)
    pull = (pull_p * valid).sum(1) / people.clamp(min=1)
    diff2 = ((mean.unsqueeze(2) - mean.unsqueeze(1)) ** 2).sum(3)  # (N, P, P)
    pairs = valid.unsqueeze(2) * valid.unsqueeze(1) * (1 - torch.eye(p, device=tags.device)).unsqueeze(0)
    push = (torch.exp(-diff2) * pairs).sum((1, 2)) / pairs.sum((1, 2)).clamp(min=1)
    return pull.mean(), push.mean()


def ae_loss(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], targets: dict[str, torch.Tensor],
            weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """outputs (heatmaps, tags, heatmaps_hr); targets as ``AECodec.encode`` makes them (batched)."""
    w = dict(AE_WEIGHTS, **(weights or {}))
    heatmaps, tags, heatmaps_hr = outputs
    pull, push = ae_tag_loss(tags, targets["joints"], targets["joint_mask"])
    parts = {"heatmaps": ((heatmaps - targets["heatmaps"]) ** 2).mean(),
             "heatmaps_hr": ((heatmaps_hr - targets["heatmaps_hr"]) ** 2).mean(), "pull": pull, "push": push}
    total = sum(w[key] * value for key, value in parts.items())
    return total, {key: float(value.detach()) for key, value in parts.items()}
