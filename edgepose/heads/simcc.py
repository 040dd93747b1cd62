"""The SimCC head (RTMPose-style): top-down, each joint's x and y classified over 1D bins (split ratio 2)."""

from __future__ import annotations

import numpy as np

from edgepose.heads.base import Head, register_head


class SimCCHead(Head):
    name = "simcc"
    argmax_decode = True
    outputs = {"simcc": {"host": ("simcc_x", "simcc_y"), "graph": ("keypoints",)}}
    decoders = {"simcc": ("edgepose.codecs.graph_simcc", "SimCCDecode")}
    trainable = ("simcc",)

    def well_conditioned(self, raw_outs, rel_gap: float):
        """Joints whose argmax leads on both axes by more than ``rel_gap`` of the vector's span."""
        from edgepose.codecs.simcc import SimCCCodec

        return SimCCCodec.near_ties(tuple(np.asarray(o) for o in raw_outs[:2]), rel_gap)

    def make_dataset(self, coco, meta, **kwargs):
        from edgepose.train.datasets import TopDownDataset  # codec-generic: SimCCCodec.encode gives the targets

        return TopDownDataset(coco, meta, **kwargs)

    def step_loss(self, model, batch):
        from edgepose.train.losses import simcc_kl

        images, targets, weight = batch
        loss = simcc_kl(model(images), targets, weight)
        return loss, {"kl": float(loss.detach())}


register_head(SimCCHead())
