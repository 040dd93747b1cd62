"""Training loss of the OpenPose-style PAF head: masked L2 on the joint heatmaps and on the part affinity fields,
summed over every stage (the initial and each refinement stage predict both; intermediate supervision as in
Cao et al.).

Per stage and output: 0.5 × the sum over cells of the masked squared error, divided by the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from edgepose.errors import InputError


def masked_l2(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """pred, target (N, C, H, W); mask (N, 1, H, W) (0: ignore the cell). 0.5 · Σ mask · (pred - target)² / N."""
    if pred.shape != target.shape:
        raise InputError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} shapes differ")
    return 0.5 * (((pred - target) ** 2) * mask).sum() / pred.shape[0]


def paf_loss(stages: Sequence[Sequence[torch.Tensor]], targets: dict[str, torch.Tensor],
             paf_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """``stages``: per stage (heatmaps (N, K, H, W), pafs (N, 2L, H, W)) — what an OpenPose model returns in
    training mode; ``targets``: ``PAFCodec.encode``'s dict, batched. → (total, {"heatmaps_s1": ..., "pafs_s1": ...})."""
    if isinstance(stages, torch.Tensor) or not stages or any(len(s) != 2 for s in stages):
        raise InputError("paf_loss expects a list of (heatmaps, pafs) per stage (the model in training mode); got "
                         f"{type(stages).__name__}")
    mask = targets["mask"]
    parts: dict[str, torch.Tensor] = {}
    for i, (hm, pafs) in enumerate(stages, 1):
        parts[f"heatmaps_s{i}"] = masked_l2(hm, targets["heatmaps"], mask)
        parts[f"pafs_s{i}"] = paf_weight * masked_l2(pafs, targets["pafs"], mask)
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}
