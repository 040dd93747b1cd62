"""Upsampling necks and prediction heads shared by the model families.

Two ways back to stride 4 from a stride-32 trunk:
- ``deconv``: SimpleBaseline's 3 x (ConvTranspose2d 4x4 stride 2, BN, ReLU) (Xiao et al. 2018);
- ``upsample``: 3 x (nearest or bilinear resize x2, Conv 3x3, BN, ReLU) — the edge variant: INT8
  edge converters handle resize + conv everywhere, while transposed convolutions are often left in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from edgepose.errors import ConfigError

HEAD_TYPES = ("deconv", "upsample")
UPSAMPLE_MODES = ("nearest", "bilinear")


def make_neck(cin: int, channels: Sequence[int], head: str = "deconv",
              upsample_mode: str = "nearest") -> nn.Sequential:
    """Stack of len(channels) x2 upsampling stages, indices as in SimpleBaseline's ``deconv_layers``."""
    if head not in HEAD_TYPES:
        raise ConfigError(f"head must be one of {HEAD_TYPES}, got {head!r}")
    if upsample_mode not in UPSAMPLE_MODES:
        raise ConfigError(f"upsample_mode must be one of {UPSAMPLE_MODES}, got {upsample_mode!r}")
    layers: list[nn.Module] = []
    for cout in channels:
        if head == "deconv":
            layers.append(nn.ConvTranspose2d(cin, cout, 4, 2, 1, output_padding=0, bias=False))
        else:
            align = False if upsample_mode == "bilinear" else None
            layers.append(nn.Upsample(scale_factor=2, mode=upsample_mode, align_corners=align))
            layers.append(nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
        layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        cin = cout
    return nn.Sequential(*layers)


def make_head(cin: int, cout: int, head_conv: int = 64, bias_init: float | None = None) -> nn.Sequential:
    """CenterNet-style prediction head: 3x3 conv + ReLU + 1x1 conv (``bias_init`` for heatmap logits)."""
    head = nn.Sequential(nn.Conv2d(cin, head_conv, 3, 1, 1, bias=True), nn.ReLU(inplace=True),
                         nn.Conv2d(head_conv, cout, 1, 1, 0, bias=True))
    if bias_init is not None:
        nn.init.constant_(head[-1].bias, bias_init)
    return head
