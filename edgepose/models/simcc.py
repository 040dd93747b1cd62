"""SimCC top-down models (Li et al., ECCV 2022; the coordinate-classification head RTMPose uses).

Backbone (stride 32) → one resize + 3x3 conv stage (stride 16) → a 3x3 conv to K joint maps → each joint's map
flattened → a shared MLP → two linear classifiers over x bins (W_in × split ratio) and y bins (H_in × split ratio).
One upsampling stage instead of SimpleBaseline's three; the rest is linear layers, which INT8 converters handle
everywhere. The flattened size ties a model to its input size.
"""

from __future__ import annotations

import torch
from torch import nn

from edgepose.codecs.simcc import SimCCCodec
from edgepose.models.backbones import MobileNetV2Trunk, ResNetTrunk, init_weights
from edgepose.models.heads import make_neck
from edgepose.models.registry import ModelMeta, register_model
from edgepose.models.simplebaseline import _check_common


class _SimCCHeadMixin:
    def _build_head(self, cin: int, k: int, input_size: tuple[int, int], split_ratio: float, hidden: int) -> None:
        w, h = input_size
        self.upsample_layers = make_neck(cin, (hidden,), "upsample")  # stride 16: 4x the cells per joint of 32
        self.final_layer = nn.Conv2d(hidden, k, 3, 1, 1)
        self.mlp = nn.Sequential(nn.Linear((w // 16) * (h // 16), hidden), nn.ReLU(inplace=True))
        wx, wy = SimCCCodec(input_size, split_ratio).bins
        self.cls_x, self.cls_y = nn.Linear(hidden, wx), nn.Linear(hidden, wy)
        init_weights(self)
        for cls in (self.cls_x, self.cls_y):  # logits start near 0 (like SimpleBaseline's final layer)
            nn.init.normal_(cls.weight, std=0.001)
            nn.init.zeros_(cls.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) normalised RGB → (simcc_x (N, K, Wx), simcc_y (N, K, Wy)) per-bin logits."""
        maps = self.final_layer(self.upsample_layers(self.forward_features(x)))
        feat = self.mlp(torch.flatten(maps, 2))
        return self.cls_x(feat), self.cls_y(feat)


class SimCCMobileNetV2(_SimCCHeadMixin, MobileNetV2Trunk):
    def __init__(self, width_mult: float, k: int, input_size, split_ratio: float, hidden: int):
        super().__init__(width_mult)
        self._build_head(self.out_channels, k, input_size, split_ratio, hidden)


class SimCCResNet(_SimCCHeadMixin, ResNetTrunk):
    def __init__(self, depth: int, k: int, input_size, split_ratio: float, hidden: int):
        super().__init__(depth)
        self._build_head(self.out_channels, k, input_size, split_ratio, hidden)


def _build(name: str, backbone: str, *, num_keypoints: int | None = None, keypoints: str = "coco",
           input_size=(192, 256), width_mult: float = 1.0, split_ratio: float = 2.0, hidden: int = 256,
           sigma=None) -> nn.Module:
    k, size = _check_common(num_keypoints, keypoints, input_size)
    if backbone.startswith("resnet"):
        model = SimCCResNet(int(backbone[6:]), k, size, split_ratio, hidden)
    else:
        model = SimCCMobileNetV2(width_mult, k, size, split_ratio, hidden)
    # RTMPose's sigmas at 192x256 (4.9, 5.66 bins), scaled with the input
    sig = sigma or (round(4.9 * size[0] / 192, 3), round(5.66 * size[1] / 256, 3))
    codec = SimCCCodec(size, split_ratio, sig).to_dict()
    config = dict(keypoints=keypoints, input_size=list(size), width_mult=width_mult, split_ratio=split_ratio,
                  hidden=hidden, sigma=list(codec["sigma"]))
    model.edgepose_meta = ModelMeta(name=name, kind="simcc", input_size=size, keypoints=keypoints, codec=codec,
                                    config=config)
    return model


@register_model("simcc-mnv2s")
def simcc_mnv2s(**kw) -> nn.Module:
    """SimCC on MobileNetV2 x0.5, 96x128 input, split ratio 2, 128-wide MLP (the SimCC sibling of the default)."""
    kw.setdefault("width_mult", 0.5)
    kw.setdefault("input_size", (96, 128))
    kw.setdefault("hidden", 128)
    return _build("simcc-mnv2s", "mobilenetv2", **kw)


@register_model("simcc-r18")
def simcc_r18(**kw) -> nn.Module:
    """SimCC on ResNet-18, 192x256 input, split ratio 2, 256-wide MLP."""
    return _build("simcc-r18", "resnet18", **kw)
