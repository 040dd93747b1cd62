"""``movenet-heatmap-edge``: a top-down heatmap model on MoveNet Lightning's trunk and feature pyramid.

MobileNetV2 x1.0 trunk → MoveNet's pyramid back to stride 4 (lateral 1x1 projections at strides 32, 16, 8, 4,
bilinear x2 upsampling, separable 3x3 fusions) → one MoveNet head (separable 3x3, 96 channels, 1x1) giving K
heatmaps at stride 4. Unlike SimpleBaseline's stride-32-only neck, the pyramid keeps the stride 4 / 8 / 16 detail,
which a small input (160x192: a 5x6 map at stride 32) needs.

It is trained like every heatmap model of the zoo (Gaussian targets, MSE, DARK decode; ``edgepose train`` /
``edgepose distill``), and starts from Google's Lightning weights (``--init-trunk movenet-lightning`` copies the
trunk, the pyramid and the keypoint-heatmap head by name). Input: RGB scaled to [-1, 1], as MoveNet's.
The embedded default weights are distilled from MoveNet Thunder on real footage (``make weights``, RECIPE.md).
"""

from __future__ import annotations

import torch

from edgepose.models.movenet import MEAN, MNV2_STAGES, STD, MoveNet
from edgepose.models.registry import register_model
from edgepose.models.simplebaseline import _check_common, heatmap_meta

WIDTH = 1.0  # Lightning's trunk
MULTIPOSE_WIDTH = 1.5  # MultiPose Lightning's trunk


class MoveNetHeatmap(MoveNet):
    """MoveNet with only the ``kpt_heatmap`` head; ``forward(x)`` → (N, K, H/4, W/4) heatmaps in (0, 1).

    The head's logits go through a sigmoid, as Google's post-processing does: Lightning's maps then start close to
    the zoo's Gaussian targets (peak 1, background 0) instead of at logits of -5 that MSE would first have to
    undo, which wrecked the pretrained pyramid in a first trial (AP 0 after one epoch).

    INT8 quantizes the trunk only (as every MoveNet), less its full-resolution start: with the stride-4 pyramid and
    head quantized too, the peaks of the frozen-trunk weights moved a heatmap cell for 72 % of the confident joints
    and every INT8 gate refused them; with the stem and the first block INT8 as well, those weights failed every
    target's real-video gate (label-free drops 21-34 against 14-17 with them float, limit 20; docs/benchmarks.md,
    "Two INT8 scope bugs"). The shipped weights, whose trunk learnt too, pass every gate in any of these scopes, with
    the least margin fully INT8 (drops 17-20) and the most in this one (11-14; "The trunk learns too"). Those two
    layers hold 7 % of the trunk's multiply-adds (12.8 of 183 M at 160x192)."""

    int8_modules = (*(f"backbone.blocks.{i}" for i in range(1, sum(n for _, _, n, _ in MNV2_STAGES))),
                    "backbone.last")

    def __init__(self, num_keypoints: int = 17):
        super().__init__(WIDTH, ("kpt_heatmap",), num_keypoints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.heads["kpt_heatmap"](self.fpn(self.backbone(x))))


@register_model("movenet-heatmap-edge")
def movenet_heatmap_edge(*, num_keypoints: int | None = None, keypoints: str = "coco", input_size=(160, 192),
                         sigma: float = 2.0, decode: str = "dark") -> MoveNetHeatmap:
    """Top-down heatmaps on MoveNet Lightning's trunk + pyramid; 160x192 input by default (multiples of 32)."""
    k, size = _check_common(num_keypoints, keypoints, input_size)
    model = MoveNetHeatmap(k)
    config = dict(keypoints=keypoints, input_size=list(size), sigma=sigma, decode=decode)
    meta = heatmap_meta("movenet-heatmap-edge", size, keypoints, sigma, decode, config)
    meta.mean, meta.std = MEAN, STD
    model.edgepose_meta = meta
    return model


# ---- bottom-up: CenterNet heads on MultiPose's trunk and pyramid ---------------------------------------
class MoveNetCenterNet(MoveNet):
    """MoveNet MultiPose's trunk (MobileNetV2 x1.5) + pyramid with the zoo's six CenterNet heads
    (``edgepose.models.centernet.HEAD_NAMES``), each a MoveNet head (separable 3x3, 96 channels, 1x1);
    ``forward(x)`` → the six maps (heatmaps as logits).

    ``--init-trunk movenet-multipose`` copies every head MultiPose has a counterpart for
    (``edgepose.models.movenet_trunk``): the student then starts as MultiPose read through the zoo's CenterNet
    decoder. Only ``hp_offset`` (one sub-cell offset shared by all joints; MultiPose has one per joint) starts fresh,
    at the cell centre (0.5, 0.5). Lightning's trunk was tried first: a single-pose model has no box heads and
    its centre map finds one person, and ten distillation epochs left the heads at AP 1.

    INT8 quantizes the trunk only (``int8_modules``, as every MoveNet): fully INT8, the joint-heatmap peaks moved a
    cell and every gate refused the model."""

    trunk_source = "movenet-multipose"

    def __init__(self, num_keypoints: int = 17):
        from edgepose.models.centernet import HEAD_NAMES, HEATMAP_BIAS
        from edgepose.models.movenet import FPN_CHANNELS, Head

        super().__init__(MULTIPOSE_WIDTH, (), num_keypoints)
        k = num_keypoints
        outs = {"hm": 1, "reg": 2, "wh": 2, "hps": 2 * k, "hm_hp": k, "hp_offset": 2}
        self.head_names = HEAD_NAMES
        self.heads = torch.nn.ModuleDict({n: Head(FPN_CHANNELS[-1], outs[n]) for n in HEAD_NAMES})
        start = {"hm": HEATMAP_BIAS, "hm_hp": HEATMAP_BIAS, "hp_offset": 0.5, "reg": 0.5}
        for n, head in self.heads.items():  # near-zero final layers, as the zoo's CenterNet heads start
            torch.nn.init.normal_(head.out.weight, std=0.001)
            torch.nn.init.constant_(head.out.bias, start.get(n, 0.0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.fpn(self.backbone(x))
        return tuple(self.heads[n](f) for n in self.head_names)


@register_model("movenet-centernet-edge")
def movenet_centernet_edge(*, num_keypoints: int | None = None, keypoints: str = "coco", input_size=(256, 256),
                           max_people: int = 20) -> MoveNetCenterNet:
    """Bottom-up CenterNet heads on MoveNet MultiPose's trunk + pyramid; 256x256 input by default."""
    from edgepose.models.registry import ModelMeta

    k, size = _check_common(num_keypoints, keypoints, input_size)
    model = MoveNetCenterNet(k)
    config = dict(keypoints=keypoints, input_size=list(size), max_people=max_people)
    codec = dict(kind="centernet", input_size=list(size), stride=4, num_keypoints=k, max_people=max_people)
    model.edgepose_meta = ModelMeta(name="movenet-centernet-edge", kind="centernet", input_size=size,
                                    keypoints=keypoints, mean=MEAN, std=STD, codec=codec, config=config)
    return model
