"""HigherHRNet (Cheng, Xiao, Wang, Shi, Huang and Zhang, "HigherHRNet: Scale-Aware Representation Learning for
Bottom-Up Human Pose Estimation", CVPR 2020): an HRNet trunk's stride-4 branch → ``final_layers.0`` (1x1 conv,
K heatmaps + K·D associative-embedding tags at 1/4) → ``deconv_layers.0`` (the features concatenated with those
predictions, a 4x4 stride-2 transposed convolution, basic residual blocks) → ``final_layers.1`` (K heatmaps at
1/2).

Forward returns ``(heatmaps, tags, heatmaps_hr)``, the contract of :class:`edgepose.codecs.ae.AECodec`.
"""

from __future__ import annotations

import torch
from torch import nn

from edgepose.models.backbones import BasicBlock, init_weights
from edgepose.models.hrnet import HRNetTrunk
from edgepose.models.registry import ModelMeta, register_model


class HigherHRNet(HRNetTrunk):
    def __init__(self, k: int, tag_dim: int = 1, deconv_channels: int | None = None, deconv_blocks: int = 4,
                 **trunk):
        super().__init__(**trunk)
        c = self.out_channels
        dc = deconv_channels or c
        self.k = k
        self.final_layers = nn.ModuleList([nn.Conv2d(c, k + k * tag_dim, 1, 1, 0), nn.Conv2d(dc, k, 1, 1, 0)])
        up = nn.Sequential(nn.ConvTranspose2d(c + k + k * tag_dim, dc, 4, 2, 1, output_padding=0, bias=False),
                           nn.BatchNorm2d(dc), nn.ReLU(inplace=True))
        self.deconv_layers = nn.ModuleList([nn.Sequential(up, *(BasicBlock(dc, dc) for _ in range(deconv_blocks)))])
        init_weights(self)
        for layer in self.final_layers:
            nn.init.normal_(layer.weight, std=0.001)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) normalised RGB → heatmaps (N, K, H/4, W/4), tags (N, K·D, H/4, W/4), heatmaps_hr
        (N, K, H/2, W/2)."""
        f = self.forward_features(x)
        low = self.final_layers[0](f)
        high = self.final_layers[1](self.deconv_layers[0](torch.cat([f, low], dim=1)))
        return low[:, :self.k], low[:, self.k:], high


def _build(name: str, *, width: int, num_blocks: int = 4, num_modules=(1, 4, 3), stem_blocks: int = 4,
           deconv_blocks: int = 4, num_keypoints: int | None = None, keypoints: str = "coco", input_size=(512, 512),
           sigma: float = 2.0, tag_dim: int = 1, max_people: int = 30) -> nn.Module:
    from edgepose.models.simplebaseline import _check_common

    k, size = _check_common(num_keypoints, keypoints, input_size)
    model = HigherHRNet(k, tag_dim=tag_dim, deconv_blocks=deconv_blocks, width=width, num_blocks=num_blocks,
                        num_modules=tuple(num_modules), stem_blocks=stem_blocks)
    config = dict(width=width, num_blocks=num_blocks, num_modules=list(num_modules), stem_blocks=stem_blocks,
                  deconv_blocks=deconv_blocks, keypoints=keypoints, input_size=list(size), sigma=sigma,
                  tag_dim=tag_dim, max_people=max_people)
    codec = dict(kind="ae", input_size=list(size), num_keypoints=k, sigma=sigma, tag_dim=tag_dim, stride=4,
                 max_people=max_people)
    model.edgepose_meta = ModelMeta(name=name, kind="ae", input_size=size, keypoints=keypoints, codec=codec,
                                    config=config)
    return model


@register_model("higherhrnet-w32")
def higherhrnet_w32(**kw) -> nn.Module:
    """HigherHRNet-W32 (official config: HRNet-W32 trunk, one deconvolution stage with 4 basic blocks), 512x512."""
    kw.setdefault("width", 32)
    return _build("higherhrnet-w32", **kw)


@register_model("higherhrnet-w16s")
def higherhrnet_w16s(**kw) -> nn.Module:
    """The edge HigherHRNet: a width-16 HRNet trunk (16 / 32 / 64 / 128 channels) shrunk to 1 / 1 / 1 modules of 2
    basic blocks and 1 stem bottleneck, one basic block after the deconvolution, 256x256 input. Width 16, not the
    usual 18: ONNX Runtime's CPU convolutions on 18 / 36 channels give results that depend on the thread count
    (a 3x3 stride-2 18 → 36 conv at 24x16 differs by 7e-7 between 1 and 2 threads), so a bundle would not
    reproduce its golden samples bit for bit under another thread count."""
    for key, value in dict(width=16, num_blocks=2, num_modules=(1, 1, 1), stem_blocks=1, deconv_blocks=1,
                           input_size=(256, 256)).items():
        kw.setdefault(key, value)
    return _build("higherhrnet-w16s", **kw)
