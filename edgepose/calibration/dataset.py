"""Calibration data for INT8 quantization: ``CalibrationSet.from_source(source, spec)``.

Sources: a folder of images, a video file (every ``stride``-th frame), a COCO keypoints json (ground-truth
person boxes → top-down crops; whole images for bottom-up models) or ``synthetic[:N]`` (the procedural
generator, drawn from a seed disjoint from the training and validation sets).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, DataError
from edgepose.utils.progress import Progress

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_SIZE = 128
MIN_RECOMMENDED = 32  # fewer samples than this: a warning (ranges from few images are noisy)
MIN_SIDE = 8  # images smaller than this (px) are skipped
CALIB_SEED = 424_243  # synthetic calibration images: disjoint from training (0) and validation (1_000_003)


class _Skip(Exception):
    """A candidate that cannot be used; ``args[0]`` is the reason counted in ``skipped``."""


@dataclass
class CalibrationSet:
    """Preprocessed calibration samples, each float32 (1, 3, H, W) NCHW, in a deterministic order.

    ``skipped`` counts unusable inputs by reason; ``image_ids`` lists the COCO image ids used (COCO
    sources only), so that an accuracy gate can hold out the rest.
    """

    samples: list[np.ndarray]
    source: str
    skipped: dict = field(default_factory=dict)
    image_ids: list[int] = field(default_factory=list)

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_source(cls, source: str | Path, spec, *, size: int | None = None, stride: int = 1, seed: int = 0,
                    progress: bool = True) -> CalibrationSet:
        """Read up to ``size`` samples (default 128) from ``source`` for a model described by ``spec``."""
        if size is not None and (isinstance(size, bool) or int(size) < 1):
            raise ConfigError(f"calibration size must be an integer >= 1, got {size!r}")
        if int(stride) < 1:
            raise ConfigError(f"video frame stride must be >= 1, got {stride!r}")
        text = str(source)
        name, _, rest = text.partition(":")
        if name == "synthetic":
            n = _synthetic_count(text, rest)
            size = min(int(size), n) if size is not None and n else int(size or n or DEFAULT_SIZE)
            reader = _SyntheticReader(spec, size, seed)
        else:
            reader = _reader_for(Path(source), spec, int(stride))
            size = int(size or DEFAULT_SIZE)
            if spec.kind == "heatmap" and not text.endswith(".json"):
                warnings.warn(f"calibration: a top-down model calibrated on whole frames of {source} (no person "
                              "boxes there); a COCO json with person boxes, or synthetic, gives ranges closer to "
                              "the person crops it will see", stacklevel=2)
        return _collect(cls, reader, text, int(size), seed, progress)

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
        return replace(self, samples=self.samples[: max(1, int(n))])

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
        return {"source": self.source, "size": len(self), "digest": self.digest, "skipped": self.num_skipped,
                "skipped_reasons": dict(sorted(self.skipped.items()))}


# ---- collecting ----------------------------------------------------------------------------------
def _collect(cls, reader, source: str, size: int, seed: int, progress: bool) -> CalibrationSet:
    """Take samples from ``reader`` candidates (seeded subset when there are more than needed)."""
    skipped: Counter = Counter(reader.skipped)
    got: list[tuple[int, np.ndarray, int | None]] = []
    bar = Progress(size, "calibration set", enabled=progress)
    for index, load in reader.candidates(size, seed):
        try:
            sample, image_id = load()
        except _Skip as why:
            skipped[str(why)] += 1
            continue
        got.append((index, sample, image_id))
        bar.update()
        if len(got) >= size:
            break
    bar.close()
    reader.close()
    if not got:
        detail = f" ({_reasons(skipped)})" if skipped else ""
        raise DataError(f"calibration source {source} gave no usable samples{detail}; expected "
                        f"{reader.expects}")
    got.sort(key=lambda t: t[0])
    ids = sorted({i for _, _, i in got if i is not None})
    out = cls([s for _, s, _ in got], source, dict(skipped), ids)
    if skipped:
        warnings.warn(f"calibration: skipped {sum(skipped.values())} input(s) from {source}: {_reasons(skipped)}",
                      stacklevel=3)
    if len(out) < MIN_RECOMMENDED:
        warnings.warn(f"calibration set has only {len(out)} samples (from {source}); at least {MIN_RECOMMENDED} "
                      "are recommended for stable INT8 ranges", stacklevel=3)
    elif len(out) < size:
        warnings.warn(f"calibration: asked for {size} samples, {source} gave {len(out)}", stacklevel=3)
    degenerate = _degenerate(out.samples)
    if degenerate:
        warnings.warn(f"calibration data from {source} looks degenerate: {degenerate}; INT8 ranges from it will "
                      "not fit real inputs (the accuracy gate will tell)", stacklevel=3)
    return out


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


def _reasons(skipped: Counter) -> str:
    return ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()))


def _synthetic_count(text: str, rest: str) -> int | None:
    if not rest:
        return None
    try:
        n = int(rest)
    except ValueError:
        raise ConfigError(f"calibration source {text!r}: expected synthetic[:N], got {rest!r} for N") from None
    if n < 1:
        raise ConfigError(f"calibration source {text!r}: N must be >= 1")
    return n


def _input_spec(spec):
    """float32 NCHW input spec: calibration tensors are layout-neutral; batches() transposes."""
    return replace(spec.input, layout="NCHW", dtype="float32")


def _preprocess(image: np.ndarray, boxes: np.ndarray | None, spec) -> np.ndarray:
    """BGR uint8 image (+ one xyxy box for top-down) → float32 (1, 3, H, W) via the runtime's code."""
    from edgepose.pipeline.preprocess import bottomup_batch, topdown_batch

    inp = _input_spec(spec)
    if spec.kind == "centernet":
        return bottomup_batch(image, inp)[0]
    if boxes is None:
        h, w = image.shape[:2]
        boxes = np.array([[0, 0, w, h]], np.float32)
    return topdown_batch(image, boxes[:1], inp)[0]


def _check_pixels(image) -> np.ndarray:
    """Accept BGR uint8 (H, W, 3) of at least MIN_SIDE px; raise _Skip with the reason otherwise."""
    if image is None:
        raise _Skip("unreadable")
    if image.dtype != np.uint8:
        raise _Skip(f"not 8-bit ({image.dtype})")
    if image.ndim != 3 or image.shape[2] != 3:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise _Skip(f"{channels} channel(s) instead of 3")
    if min(image.shape[:2]) < MIN_SIDE:
        raise _Skip(f"smaller than {MIN_SIDE} px")
    return image


def _read_image(path: Path) -> np.ndarray:
    import cv2

    try:
        return _check_pixels(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    except cv2.error:
        raise _Skip("unreadable") from None


def _seeded_order(n: int, size: int, seed: int) -> list[int]:
    """All candidates when they fit, else a seeded permutation (collected samples are re-sorted later)."""
    if n <= size:
        return list(range(n))
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


# ---- readers -------------------------------------------------------------------------------------
class _Reader:
    expects = ""

    def __init__(self) -> None:
        self.skipped: Counter = Counter()

    def candidates(self, size: int, seed: int) -> Iterator[tuple[int, Callable]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the source (videos)."""


def _reader_for(path: Path, spec, stride: int) -> _Reader:
    if not path.exists():
        raise DataError(f"calibration source not found: {path} (expected an image folder, a video file, "
                        "a COCO json or synthetic[:N])")
    if path.is_dir():
        return _FolderReader(path, spec)
    if path.suffix.lower() == ".json":
        return _CocoReader(path, spec)
    if path.suffix.lower() in VIDEO_EXTS:
        return _VideoReader(path, spec, stride)
    raise DataError(f"calibration source {path} has unsupported type {path.suffix or '(none)'!r}; expected a "
                    f"folder, a .json, or a video ({', '.join(VIDEO_EXTS)})")


class _FolderReader(_Reader):
    expects = f"image files ({', '.join(IMAGE_EXTS)}) that OpenCV can read as 8-bit BGR"

    def __init__(self, folder: Path, spec) -> None:
        super().__init__()
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        self.files = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
        if len(files) > len(self.files):
            self.skipped["unsupported file type"] += len(files) - len(self.files)
        self.spec = spec

    def candidates(self, size, seed):
        for i in _seeded_order(len(self.files), size, seed):
            yield i, (lambda p=self.files[i]: (_preprocess(_read_image(p), None, self.spec), None))


class _CocoReader(_Reader):
    expects = "a COCO json whose images exist (and, for top-down models, person boxes)"

    def __init__(self, ann_file: Path, spec) -> None:
        from edgepose.data.coco import CocoKeypoints

        super().__init__()
        self.coco, self.spec = CocoKeypoints(ann_file), spec
        self.items: list[tuple[int, np.ndarray | None]] = []
        for image_id in self.coco.image_ids:
            if spec.kind == "centernet":
                self.items.append((image_id, None))
                continue
            for a in self.coco.annotations_for(image_id):
                x, y, w, h = (float(v) for v in a["bbox"])
                if not a.get("iscrowd", 0) and w > 1 and h > 1:
                    self.items.append((image_id, np.array([[x, y, x + w, y + h]], np.float32)))
        self._cache: tuple[int, np.ndarray] | None = None

    def _image(self, image_id: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != image_id:
            path = self.coco.image_path(image_id)
            if not path.is_file():
                raise _Skip("missing image file")
            self._cache = (image_id, _read_image(path))
        return self._cache[1]

    def candidates(self, size, seed):
        for i in _seeded_order(len(self.items), size, seed):
            image_id, box = self.items[i]
            yield i, (lambda k=image_id, b=box: (_preprocess(self._image(k), b, self.spec), k))


class _VideoReader(_Reader):
    expects = "a video with decodable frames"

    def __init__(self, path: Path, spec, stride: int) -> None:
        import cv2

        super().__init__()
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            self.cap.release()
            raise DataError(f"cannot open video {path} for calibration (OpenCV could not read it); "
                            "expected a readable video file")
        self.spec, self.stride = spec, stride

    def candidates(self, size, seed):
        frame_no = 0
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            if frame_no % self.stride == 0:
                yield frame_no, (lambda f=frame: (_preprocess(_check_pixels(f), None, self.spec), None))
            frame_no += 1

    def close(self) -> None:
        self.cap.release()


class _SyntheticReader(_Reader):
    expects = "synthetic[:N] with N >= 1"

    def __init__(self, spec, count: int, seed: int) -> None:
        super().__init__()
        self.spec, self.count, self.seed = spec, count, seed

    def _render(self, i: int):
        from edgepose.data.synthetic import render_sample

        rng = np.random.default_rng([CALIB_SEED + self.seed, i])
        multi = self.spec.kind == "centernet"
        image, anns = render_sample(rng, mode="multi" if multi else "single",
                                    image_size=(256, 256) if multi else (192, 256))
        if multi:
            return _preprocess(image, None, self.spec), None
        x, y, w, h = anns[0]["bbox"]
        return _preprocess(image, np.array([[x, y, x + w, y + h]], np.float32), self.spec), None

    def candidates(self, size, seed):
        for i in range(self.count):
            yield i, (lambda k=i: self._render(k))
