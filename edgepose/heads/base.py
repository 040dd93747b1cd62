"""What every head shares: the :class:`Head` descriptor and the registry of head kinds.

A *head* is a model family's output kind (the ``kind`` of a ModelMeta / bundle manifest): it owns everything
that differs between kinds — whether the model sees person crops (top-down) or whole frames (bottom-up), the
graph's output names, the in-graph decoder of each codec, how outputs decode into keypoints, how the accuracy
gate pairs people, how calibration / validation samples are drawn, and the training targets and loss.

Device side: this module uses numpy only; torch is imported inside the training / export methods.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from edgepose.errors import ConfigError, suggest

_HEADS: dict[str, Head] = {}


class Head:
    """A top-down head by default (one person per crop); :class:`BottomUpHead` finds the people itself.

    Subclasses set ``name`` and the per-codec tables:

    - ``outputs``: codec kind → {"host": raw output names, "graph": names after the in-graph decoder}
    - ``decoders``: codec kind → (module, class) of its in-graph decoder (torch, ``edgepose.codecs.graph*``)
    - ``trainable``: codec kinds whose training targets and loss ``edgepose train`` has
    """

    name = ""
    bottom_up = False
    flip_test = True  # horizontal flip averaging applies (one person per crop, joints re-indexed by the schema)
    heatmaps = False  # raw outputs are per-joint 2D maps (scores may carry a ``peak_margin`` factor)
    argmax_decode = False  # the decode takes an argmax of raw outputs: parity leaves out near-ties there
    outputs: dict[str, dict[str, tuple[str, ...]]] = {}
    decoders: dict[str, tuple[str, str]] = {}
    trainable: tuple[str, ...] = ()

    # ---- graph ---------------------------------------------------------------------------------
    @property
    def sample_mode(self) -> str:
        """How synthetic samples are drawn for it: 'multi' (whole frames of people) or 'single' (one figure)."""
        return "multi" if self.bottom_up else "single"

    def codec_kind(self, codec: dict | None) -> str:
        return (codec or {}).get("kind", self.name)

    def output_names(self, codec: dict | None, decode: str) -> list[str]:
        """The graph's output names for ``codec`` (a dict) decoded at ``decode`` ('host' or 'graph')."""
        table = self.outputs.get(self.codec_kind(codec))
        if table is None or decode not in table:
            raise ConfigError(f"{self.name} head has no {decode}-decoded outputs for codec "
                              f"{self.codec_kind(codec)!r}; known codecs: {', '.join(sorted(self.outputs))}")
        return list(table[decode])

    def graph_decoder(self, codec) -> Any:
        """The torch module that decodes ``codec``'s outputs inside the exported graph."""
        if codec.kind not in self.decoders:
            raise ConfigError(f"codec {codec.kind!r} has no in-graph decoder (decoders exist for "
                              f"{', '.join(sorted(self.decoders)) or 'none'}); export with decode='host'")
        module, cls = self.decoders[codec.kind]
        return getattr(importlib.import_module(module), cls)(codec)

    def well_conditioned(self, raw_outs: list[np.ndarray], rel_gap: float) -> np.ndarray | None:
        """(N, K) bool: joints whose decode no float noise of ``rel_gap`` (relative to the output's span) can move
        — the parity gate compares positions there only. None: every joint (no argmax in the decode)."""
        return None

    def refines_in_graph(self, codec: dict | None) -> bool:
        """True when the in-graph decoder does sub-pixel refinement that reduced precision can collapse (targets
        then default to the host decode at fp16 / int8)."""
        return False

    # ---- decoding --------------------------------------------------------------------------------
    def decode_crops(self, runtime, outs: list[np.ndarray], n: int) -> np.ndarray:
        """The graph's outputs for ``n`` crops → keypoints (n, K, 3) x, y, score in input pixels."""
        if runtime.spec.decode == "graph":
            return np.asarray(outs[0], np.float32)
        # a heatmap codec takes the one map; a multi-head codec (MoveNet) all outputs
        return runtime.codec.decode(outs[0] if len(outs) == 1 else tuple(outs)).astype(np.float32)

    def decode_frame(self, runtime, outs: list[np.ndarray]):
        raise ConfigError(f"a {self.name} model is top-down: it decodes person crops, not whole frames")

    def decoded(self, runtime, outs: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Keypoints (…, K, 3) and person scores (None for top-down) from raw or graph-decoded outputs."""
        return self.decode_crops(runtime, outs, n), None

    def decoded_scores(self, outs: list[np.ndarray]) -> np.ndarray:
        """The scores in graph-decoded outputs (they vary continuously with the input; parity compares them)."""
        return np.asarray(outs[0])[..., 2]

    # ---- accuracy gate -------------------------------------------------------------------------
    def pair_people(self, ref, cand, person_floor: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Pairs (reference (K, 3), candidate (K, 3)) of the same person in two Poses of one image."""
        return list(zip(ref.keypoints, cand.keypoints))

    # ---- training (torch) ------------------------------------------------------------------------
    def check_trainable(self, meta) -> None:
        codec = self.codec_kind(meta.codec)
        if codec not in self.trainable:
            have = ", ".join(trainable_kinds())
            raise ConfigError(f"edgepose train has training targets for {have} heads; {meta.name} has a "
                              f"{codec!r} head. Fine-tune it in your own loop on its raw outputs (model(x) returns "
                              f"{codec} head maps), or train a model of the zoo's other families")

    def train_dataset(self, coco, meta, **kwargs):
        """A torch Dataset of (input, targets) for ``meta``'s model, carrying this head's ``step_loss`` and
        ``collate_fn`` for :func:`edgepose.train.loop.train`."""
        self.check_trainable(meta)
        dataset = self.make_dataset(coco, meta, **kwargs)
        dataset.step_loss, dataset.collate_fn = self.step_loss, self.collate()
        return dataset

    def make_dataset(self, coco, meta, **kwargs):
        raise ConfigError(f"edgepose train has no training targets for {self.name} heads")

    def collate(self):
        """The DataLoader collate function (None: torch's default)."""
        return None

    def step_loss(self, model, batch):
        """(loss tensor, {name: float}) of one training batch."""
        raise ConfigError(f"edgepose train has no loss for {self.name} heads")

    # ---- bring your own / import ---------------------------------------------------------------
    def byo_codec(self, input_size: tuple[int, int], num_keypoints: int, feature_size=None) -> dict:
        """The codec dict of a foreign nn.Module with this head (``feature_size``: its output maps' (w, h))."""
        raise ConfigError(f"bring-your-own export supports {', '.join(byo_kinds())} heads, not {self.name!r}")

    def byo_channels(self, num_keypoints: int) -> tuple[int, ...]:
        """The channels of each raw output (in order) a foreign nn.Module with this head returns (its dry run is
        matched against them: :mod:`edgepose.export.byo`)."""
        raise ConfigError(f"bring-your-own export supports {', '.join(byo_kinds())} heads, not {self.name!r}")

    def import_codec(self, inp, outputs: list[list[int]], num_keypoints: int, method: str) -> dict:
        """The codec dict of an imported model file whose outputs have ``outputs`` shapes."""
        raise ConfigError(f"edgepose import reads {', '.join(import_kinds())} models, not {self.name!r}; export "
                          f"a {self.name} model from PyTorch with edgepose export instead")

    def check_import(self, rt) -> None:
        """One call on an imported model before it becomes a bundle (default: nothing to check)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class BottomUpHead(Head):
    """Whole frames in, every person out (keypoints, scores, boxes)."""

    bottom_up = True
    flip_test = False

    def decode_crops(self, runtime, outs, n):
        raise ConfigError(f"a {self.name} model is bottom-up: it decodes whole frames, not person crops")

    def collate(self):
        """Whole-frame samples (image, {target name: map}) → (images, {name: batched maps})."""
        return collate_maps

    def decode_frame(self, runtime, outs: list[np.ndarray]):
        """The graph's outputs for one frame → (keypoints (1, P, K, 3), scores (1, P), boxes (1, P, 4) xyxy), in
        input pixels, every candidate (unthresholded)."""
        if runtime.spec.decode == "graph":
            kps, scores, boxes = (np.asarray(o, np.float32) for o in outs[:3])
            return kps, scores, boxes
        return runtime.codec.decode(tuple(outs))

    def decoded(self, runtime, outs, n):
        kps, scores, _ = self.decode_frame(runtime, outs)
        return kps, scores

    def decoded_scores(self, outs):
        return np.asarray(outs[1])

    def pair_people(self, ref, cand, person_floor: float):
        """Each confident reference person with the candidate person closest on average."""
        pairs = []
        for p, s in zip(ref.keypoints, ref.scores):
            if s < person_floor or len(cand) == 0:
                continue
            d = np.linalg.norm(cand.keypoints[:, :, :2] - p[None, :, :2], axis=-1).mean(axis=1)
            pairs.append((p, cand.keypoints[int(np.argmin(d))]))
        return pairs


def collate_maps(batch):
    import torch

    images = torch.stack([b[0] for b in batch])
    return images, {k: torch.stack([b[1][k] for b in batch]) for k in batch[0][1]}


# ---- registry ------------------------------------------------------------------------------------------
def register_head(head: Head) -> Head:
    """Register a head instance under ``head.name`` (registering another under a taken name is an error)."""
    if not head.name:
        raise ConfigError(f"{type(head).__name__} has no name")
    if head.name in _HEADS and type(_HEADS[head.name]) is not type(head):
        raise ConfigError(f"head {head.name!r} is already registered to {type(_HEADS[head.name]).__name__}")
    _HEADS[head.name] = head
    return head


def get_head(name: str) -> Head:
    """The head registered as ``name`` (unknown name → one-line error with the close matches)."""
    if name not in _HEADS:
        raise suggest(str(name), _HEADS, "output kind (head)")
    return _HEADS[name]


def head_names() -> list[str]:
    """Registered head kinds, in registration order."""
    return list(_HEADS)


def trainable_kinds() -> list[str]:
    return [k for h in _HEADS.values() for k in h.trainable]


def check_trainable(model) -> None:
    """One-line ConfigError for a model whose head ``edgepose train`` has no targets / loss for."""
    meta = model.edgepose_meta
    get_head(meta.kind).check_trainable(meta)


def import_kinds() -> list[str]:
    """Heads a model file can be imported as (they implement ``import_codec``)."""
    return [n for n, h in _HEADS.items() if type(h).import_codec is not Head.import_codec]


def byo_kinds() -> list[str]:
    """Heads a foreign nn.Module can be exported as (they implement ``byo_codec``)."""
    return [n for n, h in _HEADS.items() if type(h).byo_codec is not Head.byo_codec]
