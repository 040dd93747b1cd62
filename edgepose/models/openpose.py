"""Lightweight OpenPose (Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields", 2017;
the edge variant after Osokin, "Real-time 2D Multi-Person Pose Estimation on CPU: Lightweight OpenPose", 2018).

MobileNetV2 trunk (``features.0`` … ``features.13``, torchvision names, so a zoo MobileNetV2 trunk loads into it):
the stride-16 features are upsampled ×2 and joined with the stride-8 ones → ``cpm`` (feature adaptation) →
``initial_stage`` (a shared trunk, then ``heatmaps`` and ``pafs`` heads) → ``refinement_stage`` (sees the features
and the initial stage's maps; residual blocks of a 3x3 and a dilated 3x3 convolution, then the same two heads).
All 3x3 convolutions are depthwise-separable. Stride 8; every map is (N, C, H/8, W/8).

Forward in eval mode (what is exported): the refinement stage's (heatmaps (N, K, …), pafs (N, 2L, …)), the
contract of :class:`edgepose.codecs.PAFCodec`. In training mode: a list of both stages' (heatmaps, pafs), which
the loss supervises.
"""

from __future__ import annotations

import torch
from torch import nn

from edgepose.codecs.paf import PAFCodec
from edgepose.keypoints import get_schema
from edgepose.models.backbones import MobileNetV2Trunk, _make_divisible, init_weights
from edgepose.models.registry import ModelMeta, register_model
from edgepose.models.simplebaseline import _check_common

STRIDE8_LAST, STRIDE16_LAST = 6, 13  # indices in MobileNetV2's ``features`` of the last block at stride 8 / 16
BN_EPS = 1e-3  # the stages' BatchNorm epsilon (TF / Keras' default): a channel with ~0 variance gains at most ~30x


def conv_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1, groups: int = 1, bn: bool = True):
    """Conv (+ BN) + ReLU. The stages leave BN out (but the first 1x1 of ``cpm``): an untrained model's BN statistics,
    measured on a few images, amplify float noise past the parity gate's 1e-4 (a stage of 3 residual blocks with BN
    did, 3e-4), and Lightweight OpenPose trains its initial stage without BN too."""
    pad = dilation * (kernel - 1) // 2
    conv = nn.Conv2d(cin, cout, kernel, 1, pad, dilation=dilation, groups=groups, bias=not bn)
    return nn.Sequential(conv, nn.BatchNorm2d(cout, eps=BN_EPS), nn.ReLU(inplace=True)) if bn else \
        nn.Sequential(conv, nn.ReLU(inplace=True))


def separable(channels: int, dilation: int = 1, bn: bool = True) -> nn.Sequential:
    """Depthwise 3x3 (optionally dilated) then pointwise 1x1, each (+ BN) + ReLU."""
    return nn.Sequential(conv_relu(channels, channels, 3, dilation, groups=channels, bn=bn),
                         conv_relu(channels, channels, 1, bn=bn))


def prediction(cin: int, hidden: int, cout: int) -> nn.Sequential:
    """1x1 conv + ReLU + 1x1 conv to ``cout`` linear maps (the last layer starts near zero)."""
    return nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, cout, 1))


class InitialStage(nn.Module):
    def __init__(self, channels: int, hidden: int, k: int, paf_channels: int):
        super().__init__()
        self.trunk = nn.Sequential(*(separable(channels, bn=False) for _ in range(3)))
        self.heatmaps = prediction(channels, hidden, k)
        self.pafs = prediction(channels, hidden, paf_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.trunk(x)
        return self.heatmaps(f), self.pafs(f)


class RefinementBlock(nn.Module):
    def __init__(self, cin: int, channels: int):
        super().__init__()
        self.initial = conv_relu(cin, channels, 1, bn=False)
        self.trunk = nn.Sequential(separable(channels, bn=False), separable(channels, dilation=2, bn=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)
        return x + self.trunk(x)


class RefinementStage(nn.Module):
    def __init__(self, cin: int, channels: int, hidden: int, k: int, paf_channels: int, blocks: int):
        super().__init__()
        self.trunk = nn.Sequential(*(RefinementBlock(cin if i == 0 else channels, channels) for i in range(blocks)))
        self.heatmaps = prediction(channels, hidden, k)
        self.pafs = prediction(channels, hidden, paf_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.trunk(x)
        return self.heatmaps(f), self.pafs(f)


class OpenPoseMobileNetV2(MobileNetV2Trunk):
    def __init__(self, width_mult: float, k: int, paf_channels: int, channels: int, hidden: int, blocks: int):
        super().__init__(width_mult)
        del self.features[STRIDE16_LAST + 1:]  # stride 16 is deep enough for people at stride 8
        c8, c16 = _make_divisible(32 * width_mult), _make_divisible(96 * width_mult)
        self.out_channels = channels
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.cpm = nn.Sequential(conv_relu(c8 + c16, channels, 1), separable(channels, bn=False),
                                 separable(channels, bn=False))
        self.initial_stage = InitialStage(channels, hidden, k, paf_channels)
        self.refinement_stage = RefinementStage(channels + k + paf_channels, channels, hidden, k, paf_channels,
                                                blocks)
        init_weights(self)
        for part in (self.cpm, self.initial_stage, self.refinement_stage):  # mostly without BN: keep the variance
            for m in part.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        for stage in (self.initial_stage, self.refinement_stage):
            for head in (stage.heatmaps, stage.pafs):
                nn.init.normal_(head[-1].weight, std=0.001)
                nn.init.zeros_(head[-1].bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) → the adapted stride-8 features (N, channels, H/8, W/8)."""
        f8 = x
        for i, block in enumerate(self.features):
            x = block(x)
            if i == STRIDE8_LAST:
                f8 = x
        return self.cpm(torch.cat([f8, self.upsample(x)], 1))

    def forward(self, x: torch.Tensor):
        f = self.forward_features(x)
        hm1, paf1 = self.initial_stage(f)
        hm2, paf2 = self.refinement_stage(torch.cat([f, hm1, paf1], 1))
        if self.training:
            return [(hm1, paf1), (hm2, paf2)]
        return hm2, paf2


def _build(name: str, *, num_keypoints: int | None = None, keypoints: str = "coco", input_size=(256, 256),
           width_mult: float = 0.5, channels: int = 96, hidden: int = 128, refinement_blocks: int = 3,
           sigma: float = 1.0, paf_width: float = 1.0) -> nn.Module:
    k, size = _check_common(num_keypoints, keypoints, input_size)
    codec = PAFCodec(size, 8, k, limbs=get_schema(keypoints).skeleton, sigma=sigma, paf_width=paf_width).to_dict()
    model = OpenPoseMobileNetV2(width_mult, k, 2 * len(codec["limbs"]), int(channels), int(hidden),
                                int(refinement_blocks))
    config = dict(keypoints=keypoints, input_size=list(size), width_mult=width_mult, channels=int(channels),
                  hidden=int(hidden), refinement_blocks=int(refinement_blocks), sigma=sigma, paf_width=paf_width)
    model.edgepose_meta = ModelMeta(name=name, kind="paf", input_size=size, keypoints=keypoints, codec=codec,
                                    config=config)
    return model


@register_model("openpose-mnv2s")
def openpose_mnv2s(**kw) -> nn.Module:
    """Lightweight OpenPose on MobileNetV2 x0.5 (trunk to stride 16, fused at stride 8), 96-channel stages, one
    refinement stage of 3 blocks, 256x256 input (multiples of 32)."""
    return _build("openpose-mnv2s", **kw)
