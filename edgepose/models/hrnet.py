"""HRNet (Sun, Xiao, Liu and Wang, "Deep High-Resolution Representation Learning for Human Pose Estimation",
CVPR 2019): a stride-4 branch kept from the stem to the head, lower-resolution branches added stage by stage, and
every module ending in a multi-scale fusion (each branch receives the sum of every branch resized to it).

The module tree and parameter names are the official implementation's (``conv1``, ``bn1``, ``conv2``, ``bn2``,
``layer1``, ``transition1..3``, ``stage2..4.M.branches.B.N``, ``stage2..4.M.fuse_layers.I.J``, ``final_layer``),
so an official ``pose_hrnet_w32_256x192`` / ``w48`` checkpoint loads with ``strict=True``
(tests/models/test_hrnet.py checks every key and shape against the official model's list).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgepose.errors import ConfigError
from edgepose.models.backbones import BasicBlock, Bottleneck, init_weights
from edgepose.models.registry import register_model


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _fuse_path(cin: int, cout: int, steps: int) -> nn.Module:
    """Branch j → branch i. ``steps`` > 0: 1x1 conv then nearest upsampling by 2**steps (j is coarser);
    ``steps`` < 0: |steps| stride-2 3x3 convs, the last one changing the channels, no ReLU after it."""
    if steps > 0:
        return nn.Sequential(nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout),
                             nn.Upsample(scale_factor=2 ** steps, mode="nearest"))
    hops = -steps
    return nn.Sequential(*(_conv_bn(cin, cout if h == hops - 1 else cin, 3, 2, relu=h < hops - 1)
                           for h in range(hops)))


class HRModule(nn.Module):
    """One high-resolution module: ``num_blocks`` basic blocks on each branch, then the fusion. With
    ``multi_scale_output=False`` only the highest-resolution branch is fused and returned (HRNet's last module)."""

    def __init__(self, channels: Sequence[int], num_blocks: int, multi_scale_output: bool = True):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c, c) for _ in range(num_blocks))) for c in channels)
        outs = n if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(None if i == j else _fuse_path(channels[j], channels[i], j - i) for j in range(n))
            for i in range(outs)) if n > 1 else nn.ModuleList()
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if not len(self.fuse_layers):
            return xs
        fused = []
        for paths in self.fuse_layers:
            y = None
            for x, path in zip(xs, paths):
                term = x if path is None else path(x)
                y = term if y is None else y + term
            fused.append(self.relu(y))
        return fused


def _transition(pre: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """Stage boundary: existing branches change channels where needed (3x3 conv); each new branch is the previous
    stage's coarsest one, strided down once more (the official ``_make_transition_layer``)."""
    layers = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(_conv_bn(pre[i], c, 3) if pre[i] != c else None)
        else:
            hops = i + 1 - len(pre)
            layers.append(nn.Sequential(*(_conv_bn(pre[-1], c if h == hops - 1 else pre[-1], 3, 2)
                                          for h in range(hops))))
    return nn.ModuleList(layers)


class HRNetTrunk(nn.Module):
    """Stem (two stride-2 3x3 convs) → ``layer1`` (bottlenecks, 256 ch) → stages 2-4 with 2, 3, 4 branches of
    ``width`` · 2**b channels. ``forward_features`` gives the stride-4 branch (``out_channels`` = ``width``).

    ``num_modules`` per stage (official W32 / W48: 1, 4, 3) and ``num_blocks`` per branch (official: 4) shrink it
    for edge variants; ``stem_blocks`` bottlenecks in ``layer1`` (official: 4).
    """

    def __init__(self, width: int = 32, num_blocks: int = 4, num_modules: Sequence[int] = (1, 4, 3),
                 stem_blocks: int = 4):
        super().__init__()
        if width < 1 or num_blocks < 1 or stem_blocks < 1 or len(num_modules) != 3 or min(num_modules) < 1:
            raise ConfigError(f"HRNet needs width, num_blocks, stem_blocks >= 1 and three num_modules >= 1; got "
                              f"width={width}, num_blocks={num_blocks}, num_modules={tuple(num_modules)}, "
                              f"stem_blocks={stem_blocks}")
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        down = nn.Sequential(nn.Conv2d(64, 256, 1, 1, 0, bias=False), nn.BatchNorm2d(256))
        self.layer1 = nn.Sequential(Bottleneck(64, 64, downsample=down),
                                    *(Bottleneck(256, 64) for _ in range(stem_blocks - 1)))
        pre: list[int] = [256]
        for s, modules in enumerate(num_modules, start=2):
            cur = [width * 2 ** b for b in range(s)]
            setattr(self, f"transition{s - 1}", _transition(pre, cur))
            last = s == 4
            setattr(self, f"stage{s}", nn.Sequential(*(
                HRModule(cur, num_blocks, multi_scale_output=not (last and m == modules - 1))
                for m in range(modules))))
            pre = cur
        self.out_channels = width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for s in (2, 3, 4):
            transition = getattr(self, f"transition{s - 1}")
            # a kept branch passes through (or changes channels); a new branch grows from the coarsest one
            srcs = [xs[min(i, len(xs) - 1)] for i in range(len(transition))]
            xs = [x if t is None else t(x) for x, t in zip(srcs, transition)]
            xs = getattr(self, f"stage{s}")(xs)
        return xs[0]


class PoseHighResolutionNet(HRNetTrunk):
    """HRNet for top-down pose: the stride-4 branch → 1x1 ``final_layer`` → K heatmaps."""

    def __init__(self, k: int, **trunk):
        super().__init__(**trunk)
        self.final_layer = nn.Conv2d(self.out_channels, k, 1, 1, 0)
        init_weights(self)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB → (N, K, H/4, W/4) heatmaps."""
        return self.final_layer(self.forward_features(x))


def _build(name: str, *, width: int, num_blocks: int = 4, num_modules=(1, 4, 3), stem_blocks: int = 4,
           num_keypoints: int | None = None, keypoints: str = "coco", input_size=(192, 256), sigma: float = 2.0,
           decode: str = "dark") -> nn.Module:
    from edgepose.models.simplebaseline import _check_common, heatmap_meta

    k, size = _check_common(num_keypoints, keypoints, input_size)
    model = PoseHighResolutionNet(k, width=width, num_blocks=num_blocks, num_modules=tuple(num_modules),
                                  stem_blocks=stem_blocks)
    config = dict(width=width, num_blocks=num_blocks, num_modules=list(num_modules), stem_blocks=stem_blocks,
                  keypoints=keypoints, input_size=list(size), sigma=sigma, decode=decode)
    model.edgepose_meta = heatmap_meta(name, size, keypoints, sigma, decode, config)
    return model


@register_model("hrnet-w32")
def hrnet_w32(**kw) -> nn.Module:
    """HRNet-W32 (official config: 1 / 4 / 3 modules, 4 basic blocks per branch), 192x256 input, 28.5 M parameters."""
    kw.setdefault("width", 32)
    return _build("hrnet-w32", **kw)


@register_model("hrnet-w48")
def hrnet_w48(**kw) -> nn.Module:
    """HRNet-W48 (official config), 192x256 input, 63.6 M parameters."""
    kw.setdefault("width", 48)
    return _build("hrnet-w48", **kw)
