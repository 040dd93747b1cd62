"""The CenterNet-style head: bottom-up, person centres plus per-person joint offsets (also MoveNet MultiPose)."""

from __future__ import annotations

from edgepose.errors import ConfigError
from edgepose.heads.base import BottomUpHead, register_head

_GRAPH = ("keypoints", "scores", "boxes")


class CenterNetHead(BottomUpHead):
    name = "centernet"
    outputs = {
        "centernet": {"host": ("hm", "reg", "wh", "hps", "hm_hp", "hp_offset"), "graph": _GRAPH},
        "movenet-multipose": {"host": ("centre", "box_scale", "box_offset", "kpt_regress", "kpt_heatmap",
                                       "kpt_offset"), "graph": _GRAPH},
    }
    decoders = {"centernet": ("edgepose.codecs.graph", "CenterNetDecode"),
                "movenet-multipose": ("edgepose.codecs.graph_movenet", "MoveNetMultiPoseDecode")}
    trainable = ("centernet",)

    def make_dataset(self, coco, meta, **kwargs):
        from edgepose.train.datasets import BottomUpDataset

        return BottomUpDataset(coco, meta, **kwargs)

    def step_loss(self, model, batch):
        from edgepose.train.losses import centernet_loss

        images, targets = batch
        return centernet_loss(model(images), targets)

    def byo_codec(self, input_size, num_keypoints, feature_size=None):
        w, h = input_size
        stride = w // feature_size[0] if feature_size else 4
        return dict(kind="centernet", input_size=[w, h], stride=stride, num_keypoints=num_keypoints)

    def byo_channels(self, num_keypoints):
        return (1, 2, 2, 2 * num_keypoints, num_keypoints, 2)  # hm, reg, wh, hps, hm_hp, hp_offset

    def import_codec(self, inp, outputs, num_keypoints, method):
        w, _ = inp.size
        if len(outputs) != 6:
            raise ConfigError(f"a centernet model has 6 outputs (hm, reg, wh, hps, hm_hp, hp_offset); this one has "
                              f"{len(outputs)}")
        return dict(kind="centernet", input_size=list(inp.size), stride=w // outputs[0][3],
                    num_keypoints=num_keypoints)


register_head(CenterNetHead())
