"""Calibration data for INT8 quantization: ``CalibrationSet.from_source(source, spec)``.

Sources (:mod:`edgepose.calibration.frames`): a folder of images and / or videos, an image, a video, a COCO
keypoints json (ground-truth person boxes → top-down crops; whole images for bottom-up models),
``synthetic[:N]`` (the procedural generator, drawn from a seed disjoint from the training and validation sets),
or a list of these. Several videos (or sources) share the ``size`` samples evenly, and a video's share is spread
over its whole length (every ``stride``-th frame eligible).

Every sample goes through the runtime's own preprocessing (:func:`edgepose.pipeline.preprocess.topdown_batch`
/ :func:`~edgepose.pipeline.preprocess.bottomup_batch`), so calibration sees exactly what a deployed model
sees. Samples are stored as float32 (1, 3, H, W) NCHW tensors; :meth:`CalibrationSet.batches` yields them in
a fixed order as (1, 3, H, W) or (1, H, W, 3). Files that cannot be used (unsupported type, unreadable,
wrong channel count or bit depth, too small) are skipped and counted; an empty set is a DataError.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from edgepose.calibration.frames import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    MultiReader,
    open_source,
    skip_reasons,
    source_list,
    take_frames,
)
from edgepose.calibration.frames import synthetic_count as _synthetic_count
from edgepose.errors import ConfigError, DataError

__all__ = ["CalibrationSet", "IMAGE_EXTS", "VIDEO_EXTS"]
DEFAULT_SIZE = 128
MIN_RECOMMENDED = 32  # fewer samples than this: a warning (ranges from few images are noisy)


@dataclass
class CalibrationSet:
    """Preprocessed calibration samples, each float32 (1, 3, H, W) NCHW, in a deterministic order.

    ``skipped`` counts unusable inputs by reason; ``image_ids`` lists the COCO image ids used (COCO
    sources only), so that an accuracy gate can hold out the rest. ``sources`` lists every source given;
    ``parts`` says how many samples each stream (video, image folder, ...) gave when there were several.
    """

    samples: list[np.ndarray]
    source: str
    skipped: dict = field(default_factory=dict)
    image_ids: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    parts: list[dict] = field(default_factory=list)
    boxes: dict = field(default_factory=dict)  # top-down frames boxed by person_box: {"reference" | "frame": n}

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_source(cls, source, spec, *, size: int | None = None, stride: int = 1, seed: int = 0,
                    progress: bool = True, person_box=None) -> CalibrationSet:
        """Read up to ``size`` samples (default 128) from ``source`` (a str / Path, or a list of them; see the
        module docstring) for a model described by ``spec``.

        ``person_box`` (top-down models): ``image -> (xyxy box, how)`` for frames that come without one (videos,
        image folders), e.g. :func:`edgepose.calibration.label_free.person_box` with the float model, so the
        samples are person crops like those the model will see, not whole frames squeezed to its input."""
        if size is not None and (isinstance(size, bool) or int(size) < 1):
            raise ConfigError(f"calibration size must be an integer >= 1, got {size!r}")
        if int(stride) < 1:
            raise ConfigError(f"video frame stride must be >= 1, got {stride!r}")
        items = source_list(source)
        text = ", ".join(items)
        if len(items) == 1 and items[0].partition(":")[0] == "synthetic":
            n = _synthetic_count(items[0])
            size = min(int(size), n) if size is not None and n else int(size or n or DEFAULT_SIZE)
        else:
            size = int(size or DEFAULT_SIZE)
        reader = open_source(items, spec.kind, size=size, seed=seed, stride=int(stride))
        frames = [t for t in items if t.partition(":")[0] != "synthetic" and not t.endswith(".json")]
        if not spec.bottom_up and frames and person_box is None:
            warnings.warn(f"calibration: a top-down model calibrated on whole frames of {', '.join(frames)} (no "
                          "person boxes there); a COCO json with person boxes, or synthetic, gives ranges closer to "
                          "the person crops it will see", stacklevel=2)
        finder = None if spec.bottom_up else person_box
        out = _collect(cls, reader, text, size, seed, progress, spec, finder)
        out.sources = items
        return out

    # ---- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def batches(self, layout: str = "NCHW") -> Iterator[np.ndarray]:
        """Each sample as a float32 batch of one: (1, 3, H, W) for NCHW, (1, H, W, 3) for NHWC."""
        if layout not in ("NCHW", "NHWC"):
            raise ConfigError(f"layout must be NCHW or NHWC, got {layout!r}")
        for s in self.samples:
            yield s if layout == "NCHW" else np.ascontiguousarray(s.transpose(0, 2, 3, 1))

    def subset(self, n: int) -> CalibrationSet:
        """The first ``n`` samples (e.g. a small set for sensitivity analysis)."""
        return replace(self, samples=self.samples[: max(1, int(n))], parts=[], boxes={})  # counts no longer hold

    @property
    def num_skipped(self) -> int:
        return int(sum(self.skipped.values()))

    @property
    def digest(self) -> str:
        """sha256 over the samples (shape and bytes, in order): equal digests → identical calibration."""
        h = hashlib.sha256()
        for s in self.samples:
            h.update(str(s.shape).encode())
            h.update(np.ascontiguousarray(s, np.float32).tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        """What the manifest records about the calibration data."""
        out = {"source": self.source, "size": len(self), "digest": self.digest, "skipped": self.num_skipped,
               "skipped_reasons": dict(sorted(self.skipped.items()))}
        if self.boxes:
            out["person_boxes"] = {"reference": self.boxes.get("reference", 0),
                                   "whole frame": self.boxes.get("frame", 0)}
        return dict(out, sources=[dict(p) for p in self.parts]) if self.parts else out


# ---- collecting ----------------------------------------------------------------------------------
def _collect(cls, reader, source: str, size: int, seed: int, progress: bool, spec, person_box=None
             ) -> CalibrationSet:
    """Take samples from ``reader`` candidates (seeded subset when there are more than needed); frames without a
    person box get one from ``person_box`` when given (counted in ``boxes``)."""
    skipped: Counter = Counter(reader.skipped)
    boxes: Counter = Counter()

    def box_of(frame):
        if frame.box is not None or person_box is None:
            return frame.box
        box, how = person_box(frame.image)
        boxes[how] += 1
        return np.asarray(box, np.float32).reshape(1, 4)

    got = [(index, _preprocess(frame.image, box_of(frame), spec), frame.image_id)
           for index, frame in take_frames(reader, size, seed, skipped, "calibration set", progress)]
    if not got:
        detail = f" ({skip_reasons(skipped)})" if skipped else ""
        raise DataError(f"calibration source {source} gave no usable samples{detail}; expected "
                        f"{reader.expects}")
    got.sort(key=lambda t: t[0])
    ids = sorted({i for _, _, i in got if i is not None})
    out = cls([s for _, s, _ in got], source, dict(skipped), ids, parts=_parts(reader, got, size),
              boxes=dict(boxes))
    _warn_about(out, size, skipped, source)
    return out


def _parts(reader, got: list[tuple], size: int) -> list[dict]:
    """Samples per stream of a multi-stream reader (what each video / folder gave, of how many it holds)."""
    if not isinstance(reader, MultiReader):
        return []
    counts = Counter(index[0] for index, _, _ in got)
    return [{"source": s.label, "samples": counts.get(i, 0), "available": s.capacity, "share": share}
            for i, (s, share) in enumerate(zip(reader.streams, reader.shares(size)))]


def _warn_about(out: CalibrationSet, size: int, skipped: Counter, source: str) -> None:
    if skipped:
        warnings.warn(f"calibration: skipped {sum(skipped.values())} input(s) from {source}: {skip_reasons(skipped)}",
                      stacklevel=4)
    if len(out) < MIN_RECOMMENDED:
        warnings.warn(f"calibration set has only {len(out)} samples (from {source}); at least {MIN_RECOMMENDED} "
                      "are recommended for stable INT8 ranges", stacklevel=4)
    elif len(out) < size:
        warnings.warn(f"calibration: asked for {size} samples, {source} gave {len(out)}", stacklevel=4)
    degenerate = _degenerate(out.samples)
    if degenerate:
        warnings.warn(f"calibration data from {source} looks degenerate: {degenerate}; INT8 ranges from it will "
                      "not fit real inputs (the accuracy gate will tell)", stacklevel=4)


def _degenerate(samples: list[np.ndarray]) -> str:
    """'' for usable calibration samples, else what is wrong with them (constant or identical images)."""
    flat = [s.reshape(-1) for s in samples]
    # constant per channel (a black frame is not constant across the normalised channels)
    flat_count = sum(float(s.reshape(s.shape[1], -1).std(axis=1).max()) < 1e-3 for s in samples)
    if flat_count * 2 > len(flat):
        return f"{flat_count} of {len(flat)} samples are constant images"
    if len(flat) > 1 and all(np.abs(f - flat[0]).max() < 1e-3 for f in flat[1:]):
        return f"all {len(flat)} samples are the same image"
    return ""


def _input_spec(spec):
    """float32 NCHW input spec: calibration tensors are layout-neutral; batches() transposes."""
    return replace(spec.input, layout="NCHW", dtype="float32")


def _preprocess(image: np.ndarray, boxes: np.ndarray | None, spec) -> np.ndarray:
    """BGR uint8 image (+ one xyxy box for top-down) → float32 (1, 3, H, W) via the runtime's code."""
    from edgepose.pipeline.preprocess import bottomup_batch, topdown_batch

    inp = _input_spec(spec)
    if spec.bottom_up:
        return bottomup_batch(image, inp)[0]
    if boxes is None:
        h, w = image.shape[:2]
        boxes = np.array([[0, 0, w, h]], np.float32)
    return topdown_batch(image, boxes[:1], inp)[0]

