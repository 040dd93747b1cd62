"""Training losses.

- ``heatmap_mse``: SimpleBaseline's joints MSE with per-joint target weights (unlabelled joints count 0).
- ``ohkm_mse``: CPN's online hard keypoint mining: the same per-joint MSE, averaged over each sample's worst joints.
- ``multistage_heatmap_loss``: every stage of a multi-stage model (CPN's GlobalNet levels, then its RefineNet).
- ``focal_loss``: CornerNet / CenterNet penalty-reduced pixel-wise focal loss on heatmap logits.
- ``masked_l1``: L1 over the cells a mask selects, normalised by the mask sum.
- ``centernet_loss``: the weighted sum over the six CenterNet heads.
- ``simcc_kl``: RTMPose's KL discrepancy between softmaxed SimCC x / y vectors and softmaxed 1D Gaussian targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CENTERNET_WEIGHTS = {"hm": 1.0, "reg": 1.0, "wh": 0.1, "hps": 1.0, "hm_hp": 1.0, "hp_offset": 1.0}


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """pred, target (N, K, H, W); weight (N, K). Mean over joints of 0.5 * weighted MSE."""
    w = weight[:, :, None, None]
    return 0.5 * ((pred * w - target * w) ** 2).mean()


def ohkm_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, topk: int = 8) -> torch.Tensor:
    """pred, target (N, K, H, W); weight (N, K). Per joint 0.5 * weighted MSE over its map; per sample the mean of
    the ``topk`` largest (CPN's RefineNet loss, which leaves the easy joints to the GlobalNet)."""
    w = weight[:, :, None, None]
    per_joint = 0.5 * ((pred * w - target * w) ** 2).flatten(2).mean(-1)  # (N, K)
    return per_joint.topk(min(topk, per_joint.shape[1]), dim=1).values.mean()


def multistage_heatmap_loss(inner: list[torch.Tensor], final: torch.Tensor, target: torch.Tensor,
                            weight: torch.Tensor, topk: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """A multi-stage heatmap model's loss (CPN): the mean MSE over its inner stages' maps (every joint) plus the
    final maps' MSE, over each sample's ``topk`` hardest joints when given (OHKM)."""
    inner_loss = sum(heatmap_mse(m, target, weight) for m in inner) / max(len(inner), 1)
    k = target.shape[1] if topk is None else min(topk, target.shape[1])
    final_loss = ohkm_mse(final, target, weight, topk=k)
    return inner_loss + final_loss, {"inner": float(inner_loss.detach()), "final": float(final_loss.detach())}


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Penalty-reduced focal loss (Law and Deng, CornerNet), normalised by the number of peaks.

    logits, target (N, C, H, W); target is 1 at object centres and a Gaussian falloff elsewhere.
    """
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1.0 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** alpha * pos
    neg_loss = torch.log(1 - pred) * pred ** alpha * (1 - target) ** beta * neg
    num_pos = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos.clamp(min=1.0)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum |pred - target| where mask is 1, divided by the mask sum (mask broadcasts over channels)."""
    mask = mask.expand_as(pred)
    return (F.l1_loss(pred * mask, target * mask, reduction="sum") / (mask.sum() + 1e-4))


def centernet_loss(outputs: tuple[torch.Tensor, ...], targets: dict[str, torch.Tensor],
                   weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """outputs in HEAD_NAMES order; targets as made by CenterNetCodec.encode (batched)."""
    w = dict(CENTERNET_WEIGHTS, **(weights or {}))
    hm, reg, wh, hps, hm_hp, hp_off = outputs
    parts = {
        "hm": focal_loss(hm, targets["center_heatmap"]),
        "reg": masked_l1(reg, targets["center_offset"], targets["center_mask"]),
        "wh": masked_l1(wh, targets["box_size"], targets["center_mask"]),
        "hps": masked_l1(hps, targets["kpt_offset"], targets["kpt_offset_mask"]),
        "hm_hp": focal_loss(hm_hp, targets["kpt_heatmap"]),
        "hp_offset": masked_l1(hp_off, targets["kpt_subpixel"], targets["kpt_subpixel_mask"]),
    }
    total = sum(w[k] * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}



def simcc_kl(pred: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor, weight: torch.Tensor,
             beta: float = 10.0) -> torch.Tensor:
    """pred (simcc_x (N, K, Wx), simcc_y (N, K, Wy)); target (N, K, Wx + Wy) as ``SimCCCodec.encode`` makes it
    (Gaussians with peak 1); weight (N, K). KL(softmax(beta · target) ‖ softmax(beta · pred)) per axis, summed
    over the two axes and averaged over labelled joints (RTMPose's KLDiscretLoss with label softmax)."""
    sx, sy = pred
    wx = sx.shape[-1]
    per = 0.0
    for p, t in ((sx, target[..., :wx]), (sy, target[..., wx:])):
        log_p = F.log_softmax(p * beta, dim=-1)
        q = F.softmax(t * beta, dim=-1)
        per = per + (q * (torch.log(q.clamp(min=1e-12)) - log_p)).sum(-1)
    return (per * weight).sum() / weight.sum().clamp(min=1.0)
