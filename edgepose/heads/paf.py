"""The OpenPose-style head: bottom-up, joint heatmaps plus part affinity fields, grouped into people on the host.

Host placement: the graph ends at the raw (heatmaps, pafs); the host does peak NMS, sub-cell offsets and the
grouping. Graph placement: the graph also does peak NMS and the sub-cell offsets (``edgepose.codecs.graph_paf``)
and outputs (peaks, offsets, pafs); the host only groups. The number of people is data-dependent, so the grouping
never goes into the graph.
"""

from __future__ import annotations

import numpy as np

from edgepose.heads.base import BottomUpHead, register_head


class PAFHead(BottomUpHead):
    name = "paf"
    outputs = {"paf": {"host": ("heatmaps", "pafs"), "graph": ("peaks", "offsets", "pafs")}}
    decoders = {"paf": ("edgepose.codecs.graph_paf", "PAFDecode")}
    trainable = ("paf",)

    def refines_in_graph(self, codec) -> bool:
        return True  # the log-parabola offsets: reduced precision flattens the log differences

    def decode_frame(self, runtime, outs: list[np.ndarray]):
        if runtime.spec.decode == "graph":
            return runtime.codec.decode_peaks(tuple(outs))
        return runtime.codec.decode(tuple(outs))

    def decoded_scores(self, outs):
        """The part affinity fields: passed through the in-graph decode, continuous in the input (the peaks map
        switches cells on and off at near-ties, so parity compares keypoints there instead)."""
        return np.asarray(outs[-1])

    # ---- training (torch) ------------------------------------------------------------------------
    def make_dataset(self, coco, meta, **kwargs):
        from edgepose.train.datasets import BottomUpDataset

        return BottomUpDataset(coco, meta, **kwargs)

    def step_loss(self, model, batch):
        from edgepose.train.losses_paf import paf_loss

        images, targets = batch
        return paf_loss(model(images), targets)


register_head(PAFHead())
