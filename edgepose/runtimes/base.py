"""The one runtime interface: ``Runtime`` — public methods validate, backends implement ``*_impl``.

    with edgepose.load("bundles/ov") as rt:
        poses = rt(image_bgr, boxes=person_boxes)   # Poses in image pixels
        raw = rt.infer(tensor)                      # the graph's outputs, for parity checks

Backends implement ``load_impl``, ``close_impl``, ``input_metadata_impl`` and ``infer_impl`` (on a batch
of exactly the model's batch size when that is fixed); the base class does the rest: input checks,
preprocessing, batching, decoding on the host when the graph does not, mapping back to the image.
"""

from __future__ import annotations

import time

import numpy as np

from edgepose.errors import EdgeposeError, InputError
from edgepose.pipeline.preprocess import bottomup_batch, check_boxes, check_image, map_back, topdown_batch
from edgepose.runtimes.poses import Poses
from edgepose.runtimes.spec import ModelSpec
from edgepose.utils.numbers import is_number


def _check_threshold(value) -> float | None:
    if value is None:
        return None
    if not is_number(value):
        raise InputError(f"score_threshold must be a finite number (a person score, 0..1), got {value!r}")
    return float(value)


class Runtime:
    backend = "base"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.is_loaded = False
        self._codec = None
        self._input_meta: dict | None = None  # read once per load: infer() checks every call against it
        # Stage profiling (edgepose.profiling): when a dict is set here, __call__ adds the seconds it spends in
        # "preprocess", "inference" and "decode" to it. Off (None) costs one attribute test per stage.
        self.stage_times: dict[str, float] | None = None
        self._mark = 0.0

    # ---- lifecycle -------------------------------------------------------------------------
    def load(self) -> Runtime:
        if not self.is_loaded:
            self.load_impl()
            self._input_meta = self.input_metadata_impl()
            self.is_loaded = True
        return self

    def close(self) -> None:
        if self.is_loaded:
            self.close_impl()
            self.is_loaded = False

    def __enter__(self) -> Runtime:
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- raw inference ---------------------------------------------------------------------
    def input_metadata(self) -> dict[str, tuple[tuple, str]]:
        """{input name: (shape with -1 for dynamic dims, dtype name)}."""
        self._require_loaded("input_metadata")
        return dict(self._input_meta)

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the graph on one input tensor; returns its outputs as numpy arrays (graph order)."""
        self._require_loaded("infer")
        (name, (shape, dtype)), = self._input_meta.items()
        if not isinstance(tensor, np.ndarray):
            raise InputError(f"infer() takes a numpy array, got {type(tensor).__name__}")
        if tensor.dtype != np.dtype(dtype):
            raise InputError(f"input {name!r} has dtype {tensor.dtype}, expected {dtype}")
        if tensor.ndim != len(shape) or any(s not in (-1, t) for s, t in zip(shape[1:], tensor.shape[1:])):
            raise InputError(f"input {name!r} has shape {tensor.shape}, expected {tuple(shape)} (-1 = any)")
        fixed = shape[0]
        if tensor.shape[0] == 0 and fixed != -1:  # a fixed-batch graph cannot run 0 inputs: shape the answer
            pad = np.zeros((fixed, *tensor.shape[1:]), tensor.dtype)
            return [np.asarray(o)[:0] for o in self.infer_impl(pad)]
        if fixed in (-1, tensor.shape[0]):
            return [np.asarray(o) for o in self.infer_impl(tensor)]
        chunks = [self.infer_impl(tensor[i:i + fixed]) for i in range(0, tensor.shape[0], fixed)]
        return [np.concatenate([np.asarray(c[j]) for c in chunks]) for j in range(len(chunks[0]))]

    # ---- images → poses --------------------------------------------------------------------
    def __call__(self, image: np.ndarray, boxes=None, *, flip_test: bool = False,
                 score_threshold: float | None = None) -> Poses:
        """Poses in ``image`` (BGR uint8, H x W x 3). Top-down models take person ``boxes`` (N, 4) xyxy, or
        (N, 5) with a detector score (default: the whole image; an empty list: no people); bottom-up models find
        the people themselves. Only people scoring >= ``score_threshold`` are kept (bottom-up default: the
        manifest's; top-down default: all, the person score being the mean keypoint score × the box score)."""
        self._require_loaded("__call__")
        if self.stage_times is not None:
            self._mark = time.perf_counter()
        image = check_image(image)
        thr = _check_threshold(score_threshold)
        if self.spec.bottom_up:
            if flip_test:
                raise InputError(f"flip_test needs a top-down (heatmap) model; this one is {self.spec.kind!r}")
            if boxes is not None:
                raise InputError("boxes given to a bottom-up (centernet) model, which finds the people itself; "
                                 "expected boxes=None")
            return self._bottomup(image, self.spec.score_threshold if thr is None else thr)
        h, w = image.shape[:2]
        if boxes is None:
            boxes = np.array([[0, 0, w, h]], np.float32)
        boxes, box_scores = check_boxes(boxes, image.shape)
        if len(boxes) == 0:
            return Poses.empty(self.num_keypoints)
        poses = self._topdown(image, boxes, box_scores, flip_test)
        if thr is not None:
            keep = poses.scores >= thr
            poses = Poses(poses.keypoints[keep], poses.scores[keep], poses.boxes[keep])
        return poses

    @property
    def num_keypoints(self) -> int:
        from edgepose.keypoints import get_schema

        return get_schema(self.spec.keypoints).num_keypoints

    def _topdown(self, image, boxes, box_scores, flip_test: bool) -> Poses:
        batch, mats = topdown_batch(image, boxes, self.spec.input)
        self._lap("preprocess")
        kps = self._decode_single(batch)
        if flip_test:
            kps = self._flip_average(batch, kps)
        kps = map_back(kps, mats)
        person = kps[:, :, 2].mean(axis=1)
        if box_scores is not None:
            person = person * box_scores
        poses = Poses(kps, person.astype(np.float32), boxes.astype(np.float32))
        self._lap("decode")
        return poses

    def _lap(self, stage: str) -> None:
        """Profiling: charge the time since the last mark to ``stage`` (no-op unless ``stage_times`` is set)."""
        if self.stage_times is not None:
            now = time.perf_counter()
            self.stage_times[stage] = self.stage_times.get(stage, 0.0) + now - self._mark
            self._mark = now

    def _flip_average(self, batch: np.ndarray, kps: np.ndarray) -> np.ndarray:
        from edgepose.keypoints import get_schema

        w_axis = 3 if self.spec.input.layout == "NCHW" else 2
        flipped = np.ascontiguousarray(np.flip(batch, axis=w_axis))
        self._lap("preprocess")
        flipped = self._decode_single(flipped)
        flipped = flipped[:, get_schema(self.spec.keypoints).flip_index()]
        flipped[..., 0] = self.spec.input.size[0] - 1 - flipped[..., 0]
        return (kps + flipped) / 2.0

    def _decode_single(self, batch: np.ndarray) -> np.ndarray:
        """One person per input: → keypoints (N, K, 3) in input pixels."""
        outs = self.infer(batch)
        self._lap("inference")
        kps = self.decode_topdown(outs, batch.shape[0])
        self._lap("decode")
        return kps

    def decode_topdown(self, outs: list[np.ndarray], n: int) -> np.ndarray:
        """The graph's outputs for ``n`` crops → keypoints (n, K, 3) x, y, score in input pixels."""
        return self.spec.head.decode_crops(self, outs, n)

    def _bottomup(self, image, score_threshold: float) -> Poses:
        batch, mats = bottomup_batch(image, self.spec.input)
        self._lap("preprocess")
        outs = self.infer(batch)
        self._lap("inference")
        kps, scores, boxes = self.decode_bottomup(outs)
        keep = scores[0] >= score_threshold
        kps = map_back(kps[:1, keep], mats)[0]
        corners = boxes[0, keep].reshape(-1, 2, 2)
        boxes_img = map_back(np.concatenate([corners, np.ones_like(corners[..., :1])], -1)[None], mats)[0]
        poses = Poses(kps.astype(np.float32), scores[0, keep].astype(np.float32),
                      boxes_img[..., :2].reshape(-1, 4).astype(np.float32))
        self._lap("decode")
        return poses

    def decode_bottomup(self, outs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The graph's outputs for one frame → (keypoints (1, P, K, 3), scores (1, P), boxes (1, P, 4) xyxy),
        in input pixels, every candidate (unthresholded)."""
        return self.spec.head.decode_frame(self, outs)

    @property
    def codec(self):
        if self._codec is None:
            from edgepose.codecs import codec_from_dict

            self._codec = codec_from_dict(self.spec.codec)
        return self._codec

    def _require_loaded(self, what: str) -> None:
        if not self.is_loaded:
            raise EdgeposeError(f"{type(self).__name__}.{what}() called before load(); "
                                "use `with runtime:` or runtime.load()")

    # ---- backend hooks ---------------------------------------------------------------------
    def load_impl(self) -> None:
        raise NotImplementedError

    def close_impl(self) -> None:
        """Release backend resources (default: nothing to release)."""

    def input_metadata_impl(self) -> dict[str, tuple[tuple, str]]:
        raise NotImplementedError

    def infer_impl(self, tensor: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError
