"""CenterNet-style multi-person pose model (Zhou, Wang and Krähenbühl, "Objects as Points", 2019).

Trunk → upsampling neck to stride 4 → six heads, named as in the original code:
``hm`` person-centre heatmap (1), ``reg`` centre offset (2), ``wh`` box size (2), ``hps`` joint offsets
from the centre (2K), ``hm_hp`` joint heatmaps (K), ``hp_offset`` joint sub-pixel offset (2).
Forward returns the six maps as a tuple in that order (heatmaps are logits), which is the contract of
:class:`edgepose.codecs.CenterNetCodec`.
"""

from __future__ import annotations

import torch
from torch import nn

from edgepose.models.backbones import MobileNetV2Trunk, ResNetTrunk, init_weights
from edgepose.models.heads import make_head, make_neck
from edgepose.models.registry import ModelMeta, register_model
from edgepose.models.simplebaseline import _check_common

HEAD_NAMES = ("hm", "reg", "wh", "hps", "hm_hp", "hp_offset")
HEATMAP_BIAS = -2.19  # sigmoid(-2.19) = 0.1: the focal-loss prior from CenterNet / RetinaNet


class _CenterNetMixin:
    def _build_heads(self, cin: int, k: int, neck_channels, head: str, upsample_mode: str,
                     head_conv: int) -> None:
        self.neck = make_neck(cin, neck_channels, head, upsample_mode)
        init_weights(self)
        c = neck_channels[-1]
        outs = {"hm": 1, "reg": 2, "wh": 2, "hps": 2 * k, "hm_hp": k, "hp_offset": 2}
        for name in HEAD_NAMES:
            bias = HEATMAP_BIAS if name in ("hm", "hm_hp") else None
            setattr(self, name, make_head(c, outs[name], head_conv, bias))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(N, 3, H, W) → six (N, C, H/4, W/4) maps in HEAD_NAMES order."""
        f = self.neck(self.forward_features(x))
        return tuple(getattr(self, name)(f) for name in HEAD_NAMES)


class CenterNetResNet(_CenterNetMixin, ResNetTrunk):
    def __init__(self, depth: int, k: int, neck_channels, head: str, upsample_mode: str, head_conv: int):
        super().__init__(depth)
        self._build_heads(self.out_channels, k, neck_channels, head, upsample_mode, head_conv)


class CenterNetMobileNetV2(_CenterNetMixin, MobileNetV2Trunk):
    def __init__(self, width_mult: float, k: int, neck_channels, head: str, upsample_mode: str,
                 head_conv: int):
        super().__init__(width_mult)
        self._build_heads(self.out_channels, k, neck_channels, head, upsample_mode, head_conv)


def _build(name: str, backbone: str, *, head: str, neck_channels=(256, 128, 64), head_conv: int = 64,
           upsample_mode: str = "nearest", num_keypoints: int | None = None, keypoints: str = "coco",
           input_size=(256, 256), width_mult: float = 1.0, max_people: int = 20) -> nn.Module:
    k, size = _check_common(num_keypoints, keypoints, input_size)
    neck_channels = tuple(int(c) for c in neck_channels)
    if backbone == "resnet18":
        model = CenterNetResNet(18, k, neck_channels, head, upsample_mode, head_conv)
    else:
        model = CenterNetMobileNetV2(width_mult, k, neck_channels, head, upsample_mode, head_conv)
    config = dict(neck_channels=list(neck_channels), head_conv=head_conv, upsample_mode=upsample_mode,
                  keypoints=keypoints, input_size=list(size), width_mult=width_mult, max_people=max_people)
    codec = dict(kind="centernet", input_size=list(size), stride=4, num_keypoints=k, max_people=max_people)
    model.edgepose_meta = ModelMeta(name=name, kind="centernet", input_size=size, keypoints=keypoints,
                                    codec=codec, config=config)
    return model


@register_model("centernet-r18")
def centernet_r18(**kw) -> nn.Module:
    """CenterNet pose, ResNet-18 trunk, 3 transposed-conv stages (256, 128, 64 ch) as in CenterNet."""
    return _build("centernet-r18", "resnet18", head="deconv", **kw)


@register_model("centernet-mnv2")
def centernet_mnv2(**kw) -> nn.Module:
    """CenterNet pose, MobileNetV2 trunk, edge neck (resize + 3x3 conv: 96, 64, 64 ch)."""
    kw.setdefault("neck_channels", (96, 64, 64))
    return _build("centernet-mnv2", "mobilenetv2", head="upsample", **kw)


@register_model("centernet-mnv2s")
def centernet_mnv2s(**kw) -> nn.Module:
    """The embedded default bottom-up model: MobileNetV2 x0.5, edge neck (64, 48, 48), 192x192 input."""
    kw.setdefault("width_mult", 0.5)
    kw.setdefault("neck_channels", (64, 48, 48))
    kw.setdefault("head_conv", 32)
    kw.setdefault("input_size", (192, 192))
    return _build("centernet-mnv2s", "mobilenetv2", head="upsample", **kw)
