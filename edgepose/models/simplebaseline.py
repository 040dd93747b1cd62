"""SimpleBaseline (Xiao, Wu and Wei, "Simple Baselines for Human Pose Estimation", ECCV 2018).

Backbone → 3 upsampling stages → 1x1 conv to K heatmaps at stride 4. Parameter names follow the
original implementation (``conv1``, ``bn1``, ``layer1..4``, ``deconv_layers.N``, ``final_layer``), so an
official PoseResNet checkpoint loads with ``strict=True`` once a ``module.`` prefix is stripped.
The ``-edge`` variants replace the transposed convolutions by resize + 3x3 conv (``upsample_layers.N``).
"""

from __future__ import annotations

import torch
from torch import nn

from edgepose.codecs.heatmap import PEAK_MARGIN
from edgepose.errors import ConfigError
from edgepose.keypoints import get_schema
from edgepose.models.backbones import MobileNetV2Trunk, ResNetTrunk, init_weights
from edgepose.models.heads import make_neck
from edgepose.models.registry import ModelMeta, register_model


def _check_common(num_keypoints: int | None, keypoints: str, input_size) -> tuple[int, tuple[int, int]]:
    schema = get_schema(keypoints)
    k = schema.num_keypoints if num_keypoints is None else int(num_keypoints)
    if k != schema.num_keypoints:
        raise ConfigError(f"num_keypoints={k} does not match the {schema.name!r} schema "
                          f"({schema.num_keypoints} keypoints)")
    w, h = (int(v) for v in input_size)
    if w % 32 or h % 32 or w < 32 or h < 32:
        raise ConfigError(f"input_size must be (width, height) multiples of 32, got {tuple(input_size)}")
    return k, (w, h)


def heatmap_meta(name: str, size: tuple[int, int], keypoints: str, sigma: float, decode: str,
                 config: dict) -> ModelMeta:
    """The ModelMeta of a top-down model with K heatmaps at stride 4 (SimpleBaseline, HRNet, CPN); ``config``: the
    create() kwargs that rebuild it."""
    codec = dict(kind="heatmap", input_size=list(size), heatmap_size=[size[0] // 4, size[1] // 4],
                 sigma=sigma, method=decode, peak_margin=PEAK_MARGIN)
    return ModelMeta(name=name, kind="heatmap", input_size=size, keypoints=keypoints, codec=codec, config=config)


class _HeatmapHeadMixin:
    """Adds the neck and ``final_layer`` to a trunk and does the heatmap forward."""

    def _build_head(self, cin: int, k: int, head: str, channels: int, upsample_mode: str) -> None:
        neck = make_neck(cin, (channels,) * 3, head, upsample_mode)
        if head == "deconv":
            self.deconv_layers = neck
        else:
            self.upsample_layers = neck
        self.final_layer = nn.Conv2d(channels, k, 1, 1, 0)
        init_weights(self)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def _neck(self) -> nn.Sequential:
        return self.deconv_layers if hasattr(self, "deconv_layers") else self.upsample_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB → (N, K, H/4, W/4) heatmaps."""
        return self.final_layer(self._neck()(self.forward_features(x)))


class PoseResNet(_HeatmapHeadMixin, ResNetTrunk):
    def __init__(self, depth: int, k: int, head: str, channels: int, upsample_mode: str):
        super().__init__(depth)
        self._build_head(self.out_channels, k, head, channels, upsample_mode)


class PoseMobileNetV2(_HeatmapHeadMixin, MobileNetV2Trunk):
    def __init__(self, width_mult: float, k: int, head: str, channels: int, upsample_mode: str):
        super().__init__(width_mult)
        self._build_head(self.out_channels, k, head, channels, upsample_mode)


def _build(name: str, backbone: str, *, head: str, head_channels: int, upsample_mode: str = "nearest",
           num_keypoints: int | None = None, keypoints: str = "coco", input_size=(192, 256),
           width_mult: float = 1.0, sigma: float = 2.0, decode: str = "dark") -> nn.Module:
    k, size = _check_common(num_keypoints, keypoints, input_size)
    if backbone.startswith("resnet"):
        model = PoseResNet(int(backbone[6:]), k, head, head_channels, upsample_mode)
    else:
        model = PoseMobileNetV2(width_mult, k, head, head_channels, upsample_mode)
    config = dict(head_channels=head_channels, upsample_mode=upsample_mode, keypoints=keypoints,
                  input_size=list(size), width_mult=width_mult, sigma=sigma, decode=decode)
    model.edgepose_meta = heatmap_meta(name, size, keypoints, sigma, decode, config)
    return model


def _variant(name: str, backbone: str, head: str, channels: int):
    @register_model(name)
    def factory(**kw) -> nn.Module:
        kw.setdefault("head_channels", channels)
        return _build(name, backbone, head=head, **kw)

    factory.__doc__ = f"SimpleBaseline, {backbone} backbone, {head} head ({channels} ch)."
    return factory


simplebaseline_r18 = _variant("simplebaseline-r18", "resnet18", "deconv", 256)
simplebaseline_r34 = _variant("simplebaseline-r34", "resnet34", "deconv", 256)
simplebaseline_r50 = _variant("simplebaseline-r50", "resnet50", "deconv", 256)
simplebaseline_mnv2 = _variant("simplebaseline-mnv2", "mobilenetv2", "deconv", 256)
simplebaseline_r18_edge = _variant("simplebaseline-r18-edge", "resnet18", "upsample", 128)
simplebaseline_mnv2_edge = _variant("simplebaseline-mnv2-edge", "mobilenetv2", "upsample", 128)


@register_model("simplebaseline-mnv2s-edge")
def simplebaseline_mnv2s_edge(**kw) -> nn.Module:
    """The embedded default top-down model: MobileNetV2 x0.5, edge head (64 ch), 96x128 input."""
    kw.setdefault("width_mult", 0.5)
    kw.setdefault("head_channels", 64)
    kw.setdefault("input_size", (96, 128))
    return _build("simplebaseline-mnv2s-edge", "mobilenetv2", head="upsample", **kw)
