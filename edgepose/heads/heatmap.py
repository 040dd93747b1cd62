"""The heatmap head (SimpleBaseline, HRNet-style): top-down, one Gaussian map per joint at a stride of the input."""

from __future__ import annotations

import numpy as np

from edgepose.errors import ConfigError
from edgepose.heads.base import Head, register_head


class HeatmapHead(Head):
    name = "heatmap"
    heatmaps = True
    argmax_decode = True
    outputs = {"heatmap": {"host": ("heatmaps",), "graph": ("keypoints",)}}
    decoders = {"heatmap": ("edgepose.codecs.graph_heatmap", "HeatmapDecode")}
    trainable = ("heatmap",)

    def well_conditioned(self, raw_outs, rel_gap):
        """The 2D argmax is unique by a margin and the quarter-offset signs are stable."""
        from edgepose.codecs.stability import well_conditioned

        return well_conditioned(np.asarray(raw_outs[0]), rel_gap=rel_gap)

    def refines_in_graph(self, codec):
        return (codec or {}).get("method", "argmax") != "argmax"  # DARK / UDP refinement

    def make_dataset(self, coco, meta, **kwargs):
        from edgepose.train.datasets import TopDownDataset

        return TopDownDataset(coco, meta, **kwargs)

    def step_loss(self, model, batch):
        from edgepose.train.losses import heatmap_mse

        images, heatmaps, weight = batch
        stages = getattr(model, "forward_train", None)  # a multi-stage model (CPN): its inner stages train too
        if stages is not None:
            from edgepose.train.losses import multistage_heatmap_loss

            inner, final = stages(images)
            return multistage_heatmap_loss(inner, final, heatmaps, weight, topk=getattr(model, "ohkm_topk", None))
        loss = heatmap_mse(model(images), heatmaps, weight)
        return loss, {"mse": float(loss.detach())}

    def byo_codec(self, input_size, num_keypoints, feature_size=None):
        w, h = input_size
        fw, fh = feature_size or (w // 4, h // 4)
        return dict(kind="heatmap", input_size=[w, h], heatmap_size=[fw, fh], sigma=2.0, method="argmax")

    def byo_channels(self, num_keypoints):
        return (num_keypoints,)

    def import_codec(self, inp, outputs, num_keypoints, method):
        w, h = inp.size
        o = outputs[0]
        if len(o) != 4 or o[1] != num_keypoints:
            raise ConfigError(f"heatmap output has shape {o}; expected (N, {num_keypoints}, H, W)")
        return dict(kind="heatmap", input_size=[w, h], heatmap_size=[o[3], o[2]], sigma=2.0, method=method)


register_head(HeatmapHead())
