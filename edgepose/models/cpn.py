"""CPN, the Cascaded Pyramid Network (Chen, Wang, Peng, Zhang, Yu and Sun, "Cascaded Pyramid Network for
Multi-Person Pose Estimation", CVPR 2018).

ResNet-50 trunk (torchvision names, so ImageNet weights load) → **GlobalNet**, a feature pyramid over C2..C5
(1x1 laterals to 256 ch, top-down upsample + add) whose every level predicts K heatmaps at stride 4 →
**RefineNet**, which sends level l through l bottleneck blocks, upsamples all four to stride 4, concatenates them
and predicts the final K heatmaps. Training supervises every GlobalNet level with an L2 loss over all joints and
the RefineNet output with online hard keypoint mining (the worst 8 of 17 joints, :func:`ohkm_mse`); the
exported graph is the RefineNet's heatmaps only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.models.backbones import Bottleneck, ResNetTrunk, init_weights
from edgepose.models.registry import register_model

PYRAMID = 256  # channels of every pyramid level (the paper's)
OHKM_TOPK = 8  # joints the RefineNet loss keeps per sample (the paper's M = 8 of 17)


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class GlobalNet(nn.Module):
    """Feature pyramid over C2..C5 (``in_channels``, fine to coarse); each level also predicts K heatmaps."""

    def __init__(self, in_channels: tuple[int, ...], k: int):
        super().__init__()
        self.laterals = nn.ModuleList(_conv_bn_relu(c, PYRAMID, 1) for c in in_channels)
        # the coarser level, upsampled, passes a 1x1 conv before it is added (the paper's top-down path)
        self.top_down = nn.ModuleList(nn.Sequential(nn.Conv2d(PYRAMID, PYRAMID, 1, bias=False),
                                                    nn.BatchNorm2d(PYRAMID)) for _ in in_channels[1:])
        self.predict = nn.ModuleList(nn.Sequential(_conv_bn_relu(PYRAMID, PYRAMID, 1),
                                                   nn.Conv2d(PYRAMID, k, 3, 1, 1, bias=False),
                                                   nn.BatchNorm2d(k)) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """C2..C5 → (pyramid features fine to coarse, per-level heatmaps at C2's resolution)."""
        levels: list[torch.Tensor] = []
        up = None
        for i in reversed(range(len(feats))):
            x = self.laterals[i](feats[i])
            if up is not None:
                x = x + self.top_down[i](_resize(up, x.shape[-2:]))
            levels.insert(0, x)
            up = x
        size = levels[0].shape[-2:]
        heatmaps = [_resize(p(x), size) if j else p(x) for j, (p, x) in enumerate(zip(self.predict, levels))]
        return levels, heatmaps


class RefineNet(nn.Module):
    """Level l (0 = finest) through l bottlenecks, everything upsampled to stride 4, concatenated → K maps."""

    def __init__(self, levels: int, k: int):
        super().__init__()
        self.cascade = nn.ModuleList(nn.Sequential(*(Bottleneck(PYRAMID, PYRAMID // 4) for _ in range(n)))
                                     for n in range(levels))
        down = nn.Sequential(nn.Conv2d(PYRAMID * levels, PYRAMID, 1, bias=False), nn.BatchNorm2d(PYRAMID))
        self.final_predict = nn.Sequential(Bottleneck(PYRAMID * levels, PYRAMID // 4, downsample=down),
                                           nn.Conv2d(PYRAMID, k, 3, 1, 1))

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        size = levels[0].shape[-2:]
        cat = [c(x) if i == 0 else _resize(c(x), size) for i, (c, x) in enumerate(zip(self.cascade, levels))]
        return self.final_predict(torch.cat(cat, dim=1))


class CascadedPyramidNetwork(ResNetTrunk):
    """``forward`` gives the RefineNet's (N, K, H/4, W/4) heatmaps; ``forward_train`` every stage's, which the
    heatmap head's training loss supervises (:func:`edgepose.train.losses.multistage_heatmap_loss`)."""

    ohkm_topk = OHKM_TOPK

    def __init__(self, depth: int, k: int):
        super().__init__(depth)
        block_out = self.out_channels // 8
        self.global_net = GlobalNet((block_out, block_out * 2, block_out * 4, block_out * 8), k)
        self.refine_net = RefineNet(4, k)
        init_weights(self)
        last = self.refine_net.final_predict[-1]
        nn.init.normal_(last.weight, std=0.001)
        nn.init.zeros_(last.bias)

    def pyramid_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c2, c3, c4, self.layer4(c4)]

    def forward_train(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        levels, global_maps = self.global_net(self.pyramid_inputs(x))
        return global_maps, self.refine_net(levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB → (N, K, H/4, W/4) heatmaps (the RefineNet's)."""
        return self.forward_train(x)[1]


def _build(name: str, *, depth: int = 50, num_keypoints: int | None = None, keypoints: str = "coco",
           input_size=(192, 256), sigma: float = 2.0, decode: str = "dark") -> nn.Module:
    from edgepose.models.simplebaseline import _check_common, heatmap_meta

    k, size = _check_common(num_keypoints, keypoints, input_size)
    model = CascadedPyramidNetwork(depth, k)
    config = dict(depth=depth, keypoints=keypoints, input_size=list(size), sigma=sigma, decode=decode)
    model.edgepose_meta = heatmap_meta(name, size, keypoints, sigma, decode, config)
    return model


@register_model("cpn-r50")
def cpn_r50(**kw) -> nn.Module:
    """CPN with a ResNet-50 trunk, 192x256 input (GlobalNet + RefineNet; the RefineNet's maps deploy)."""
    return _build("cpn-r50", **kw)
