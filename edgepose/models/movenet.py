"""MoveNet (Google, 2021) as readable PyTorch: a MobileNetV2 trunk, a feature pyramid back to stride 4 and
CenterNet-style heads.

- ``movenet-lightning`` (192², trunk width 1.0) and ``movenet-thunder`` (256², width 1.75): single person.
  Heads ``centre`` (1, logits), ``kpt_regress`` (2K: y, x cell offsets of each joint from the centre),
  ``kpt_heatmap`` (K, logits), ``kpt_offset`` (2K: y, x sub-cell offsets).
- ``movenet-multipose`` (256² by default, any multiple of 32; width 1.5): up to 6 people; two more heads,
  ``box_scale`` and ``box_offset`` (2 each).

Forward returns the raw head maps (N, C, H/4, W/4) as a tuple in ``HEAD_NAMES[variant]`` order; Google's
post-processing lives in the codecs (:mod:`edgepose.codecs.movenet`) and their in-graph decoders.

Layout, as in Google's graph (read from the TFJS model): every trunk convolution has its BatchNorm folded
into a bias (``Conv2d(bias=True)``); TensorFlow's SAME padding of the stride-2 3x3 convolutions pads one
pixel at the bottom / right only, which ``ConvAct`` reproduces for the even sizes these models see; the
pyramid adds bilinear (half-pixel) x2 upsampling to 1x1 lateral projections of the trunk at strides 32, 16,
8 and 4, each sum followed by a separable 3x3 convolution + ReLU; each head is a separable 3x3 convolution
(96 channels) + ReLU + a 1x1 convolution. Input: RGB scaled to [-1, 1] (mean = std = 0.5 on [0, 1]).

Weights: ``create(name, weights="default")`` loads the embedded conversion of Google's TFJS files (see
``edgepose/weights/MOVENET.md``); ``edgepose.models.movenet_convert`` is the converter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.errors import ConfigError
from edgepose.models.registry import ModelMeta, register_model

SINGLE_HEADS = ("centre", "kpt_regress", "kpt_heatmap", "kpt_offset")
MULTI_HEADS = ("centre", "box_scale", "box_offset", "kpt_regress", "kpt_heatmap", "kpt_offset")
FPN_CHANNELS = (64, 32, 24)  # pyramid width at strides 16, 8, 4 (the stride-32 lateral has 64 too)
HEAD_HIDDEN = 96
MEAN = STD = (0.5, 0.5, 0.5)  # Google's x / 127.5 - 1 on 0..255 RGB
# (expansion, output channels, repeats, first stride) of MobileNetV2's inverted-residual stages
MNV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))
PYRAMID_TAPS = (2, 5, 9)  # blocks whose outputs feed the pyramid at strides 4, 8, 16


def _divisible(v: float, divisor: int = 8) -> int:
    """Keras' channel rounding for a width multiplier (never more than 10 % below ``v``)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class ConvAct(nn.Module):
    """``conv`` (BatchNorm folded into its bias), then ReLU6 / ReLU / nothing. A stride-2 convolution pads
    like TensorFlow's SAME on an even-sized map: one pixel at the bottom and right only."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = "relu6"):
        super().__init__()
        self.tf_same = stride == 2 and kernel == 3
        pad = 0 if kernel == 1 or self.tf_same else kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=True)
        self.act = {"relu6": nn.ReLU6(inplace=True), "relu": nn.ReLU(inplace=True), None: nn.Identity()}[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            x = F.pad(x, (0, 1, 0, 1))
        return self.act(self.conv(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) → 3x3 depthwise (ReLU6) → 1x1 linear project (+ input)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.expand = ConvAct(cin, hidden) if expansion != 1 else None
        self.depthwise = ConvAct(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvAct(hidden, cout, act=None)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
        return x + y if self.residual else y


class MobileNetV2Backbone(nn.Module):
    """``stem`` (3x3 s2) → ``blocks.0`` … ``blocks.16`` → ``last`` (1x1, 1280). Returns the maps at strides
    4, 8, 16 and 32 (outputs of blocks 2, 5, 9 and of ``last``)."""

    def __init__(self, width: float):
        super().__init__()
        cin = _divisible(32 * width)
        self.stem = ConvAct(3, cin, 3, 2)
        blocks, self.tap_channels = [], []
        for t, c, n, s in MNV2_STAGES:
            cout = _divisible(c * width)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
                if len(blocks) - 1 in PYRAMID_TAPS:
                    self.tap_channels.append(cout)
        self.blocks = nn.ModuleList(blocks)
        self.last = ConvAct(cin, 1280)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in PYRAMID_TAPS:
                taps.append(x)
        return [*taps, self.last(x)]


class SeparableConv(nn.Module):
    """Keras' SeparableConv2D + activation: ``depthwise`` 3x3 (no bias), ``pointwise`` 1x1 (bias), ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pointwise(self.depthwise(x)))


class FeaturePyramid(nn.Module):
    """Top-down pyramid: ``lateral.{0..3}`` project the stride 32/16/8/4 maps; ``fuse.{0..2}`` follow each
    upsample-and-add at strides 16, 8, 4. Output: (N, 24, H/4, W/4)."""

    def __init__(self, tap_channels: list[int]):
        super().__init__()
        c4, c8, c16 = tap_channels
        outs = (FPN_CHANNELS[0], *FPN_CHANNELS)  # lateral widths at strides 32, 16, 8, 4
        self.lateral = nn.ModuleList(nn.Conv2d(cin, cout, 1, bias=True)
                                     for cin, cout in zip((1280, c16, c8, c4), outs))
        self.fuse = nn.ModuleList(SeparableConv(cin, cout) for cin, cout in
                                  zip(outs[1:], (*FPN_CHANNELS[1:], FPN_CHANNELS[-1])))
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        s4, s8, s16, s32 = taps
        x = self.lateral[0](s32)
        for lateral, fuse, skip in zip(self.lateral[1:], self.fuse, (s16, s8, s4)):
            x = fuse(self.upsample(x) + lateral(skip))
        return x


class Head(nn.Module):
    """``hidden``: separable 3x3 (24 → 96) + ReLU; ``out``: 1x1 convolution to the head's channels."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.hidden = SeparableConv(cin, HEAD_HIDDEN)
        self.out = nn.Conv2d(HEAD_HIDDEN, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


class MoveNet(nn.Module):
    """Backbone + pyramid + heads; ``forward(x)`` → the raw head maps in ``self.head_names`` order.

    INT8 exports quantize the trunk only (``int8_modules``, :mod:`edgepose.export.int8_scope`); the stride-4
    pyramid and heads stay float. On the demo's real videos and coco-mini (docs/benchmarks.md, "INT8 of the trunk
    only"): MultiPose fully INT8 scored AP 27-34 against 45.6 in fp32, trunk-INT8 47.3-47.6; Lightning's TFLite INT8
    67.4-70.7 by calibration draw, trunk-INT8 70.1-72.8 (fp32 71.3), for about 0.35 ms more per inference."""

    int8_modules = ("backbone",)

    def __init__(self, width: float, head_names: tuple[str, ...], num_keypoints: int = 17):
        super().__init__()
        self.backbone = MobileNetV2Backbone(width)
        self.fpn = FeaturePyramid(self.backbone.tap_channels)
        k = num_keypoints
        sizes = {"centre": 1, "box_scale": 2, "box_offset": 2, "kpt_regress": 2 * k, "kpt_heatmap": k,
                 "kpt_offset": 2 * k}
        self.head_names = tuple(head_names)
        self.heads = nn.ModuleDict({name: Head(FPN_CHANNELS[-1], sizes[name]) for name in self.head_names})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.fpn(self.backbone(x))
        return tuple(self.heads[name](f) for name in self.head_names)


VARIANTS = {  # name: (trunk width, heads, default input size, codec kind)
    "movenet-lightning": (1.0, SINGLE_HEADS, 192, "movenet"),
    "movenet-thunder": (1.75, SINGLE_HEADS, 256, "movenet"),
    "movenet-multipose": (1.5, MULTI_HEADS, 256, "movenet-multipose"),
}


def _build(name: str, *, input_size=None, keypoints: str = "coco", max_people: int = 6) -> MoveNet:
    width, heads, default, codec_kind = VARIANTS[name]
    size = tuple(int(v) for v in (input_size or (default, default)))
    if len(size) != 2 or any(v <= 0 or v % 32 for v in size):
        raise ConfigError(f"{name}: input_size must be (width, height), each a positive multiple of 32, "
                          f"got {input_size!r}")
    if keypoints != "coco":
        raise ConfigError(f"{name} predicts the 17 COCO keypoints, got keypoints={keypoints!r}")
    model = MoveNet(width, heads)
    stride = 4
    codec = dict(kind=codec_kind, input_size=list(size), stride=stride, num_keypoints=17)
    config = dict(input_size=list(size), keypoints=keypoints)
    multipose = codec_kind.endswith("multipose")
    if multipose:
        codec["max_people"] = config["max_people"] = int(max_people)
    kind = "centernet" if multipose else "regression"
    # single-pose crops: the person box itself, squared (padding 1.0, as edgepose runs an imported MoveNet).
    # On the coco-mini photos Lightning scores AP 71.3 so, 60.8 with the heatmap models' 1.25 padding.
    model.edgepose_meta = ModelMeta(name=name, kind=kind, input_size=size, keypoints=keypoints, mean=MEAN, std=STD,
                                    codec=codec, config=config, box_padding=1.0)
    return model


@register_model("movenet-lightning")
def movenet_lightning(**kw) -> MoveNet:
    """Google MoveNet SinglePose Lightning: 192x192, one person (top-down on a person box or a whole frame)."""
    return _build("movenet-lightning", **kw)


@register_model("movenet-thunder")
def movenet_thunder(**kw) -> MoveNet:
    """Google MoveNet SinglePose Thunder: 256x256, one person, the more accurate single-pose model."""
    return _build("movenet-thunder", **kw)


@register_model("movenet-multipose")
def movenet_multipose(**kw) -> MoveNet:
    """Google MoveNet MultiPose Lightning: up to 6 people on a whole frame (input any multiple of 32)."""
    return _build("movenet-multipose", **kw)
