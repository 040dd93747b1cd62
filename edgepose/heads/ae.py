"""The associative-embedding head (HigherHRNet-style): bottom-up, joint heatmaps at 1/4 and 1/2 plus joint tags at
1/4; people are grouped by tag on the host whatever the placement (the graph can end with the joint candidates)."""

from __future__ import annotations

import numpy as np

from edgepose.heads.base import BottomUpHead, register_head


class AEHead(BottomUpHead):
    name = "ae"
    outputs = {"ae": {"host": ("heatmaps", "tags", "heatmaps_hr"), "graph": ("peaks", "peak_tags")}}
    decoders = {"ae": ("edgepose.codecs.graph_ae", "AEDecode")}
    trainable = ("ae",)

    def decode_frame(self, runtime, outs):
        """Raw maps (host) or the in-graph candidates (graph) → keypoints (1, P, K, 3), scores (1, P), boxes
        (1, P, 4) in input pixels; the grouping runs here in both cases."""
        if runtime.spec.decode == "graph":
            return runtime.codec.group(outs[0], outs[1])
        return runtime.codec.decode(tuple(outs))

    def decoded_scores(self, outs):
        """The candidates' heatmap values (best first per joint: continuous in the input)."""
        return np.asarray(outs[0])[..., 2]

    def make_dataset(self, coco, meta, **kwargs):
        from edgepose.train.datasets import BottomUpDataset  # codec-generic: AECodec.encode gives the targets

        return BottomUpDataset(coco, meta, **kwargs)

    def step_loss(self, model, batch):
        from edgepose.train.losses_ae import ae_loss

        images, targets = batch
        return ae_loss(model(images), targets)


register_head(AEHead())
