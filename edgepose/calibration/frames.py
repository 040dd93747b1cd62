"""Frame sources shared by calibration (:mod:`edgepose.calibration.dataset`) and the label-free accuracy gate
(:mod:`edgepose.calibration.label_free`).

A source is an image folder, a single image, a video, a folder holding images and / or videos, a COCO keypoints
json, ``synthetic[:N]``, or a list of these. Each is opened as one or more *streams*: every video is a stream,
the images of a folder (or one image file) are one stream, a COCO json or a synthetic set is one stream.

Sampling ``size`` frames from several streams gives each its fair share (``size`` split evenly; a stream with
fewer frames than its share gives them all and the rest goes to the others). Within a video the share is spread
evenly over its whole length (a seeded offset inside each of ``share`` equal intervals), not its first frames;
within an image folder it is a seeded subset. Everything is deterministic for a seed.

Readers yield candidates ``(index, load)`` in the order they prefer them; ``load()`` returns a :class:`Frame`
(BGR uint8 pixels, an optional person box, an optional COCO image id) or raises :class:`Skip` with the reason an
input cannot be used, which the caller counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, DataError
from edgepose.heads import get_head

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MIN_SIDE = 8  # images smaller than this (px) are skipped
CALIB_SEED = 424_243  # synthetic calibration images: disjoint from training (0) and validation (1_000_003)
EXPECTED = ("an image folder, an image, a video, a folder of videos, a COCO json or synthetic[:N] (or a list of "
            "these)")


class Skip(Exception):
    """A candidate that cannot be used; ``args[0]`` is the reason counted in ``skipped``."""


@dataclass
class Frame:
    """One input: BGR uint8 (H, W, 3) pixels, a (1, 4) xyxy person box or None, a COCO image id or None, and
    where it came from (file name, frame number)."""

    image: np.ndarray
    box: np.ndarray | None = None
    image_id: int | None = None
    origin: str = ""


def check_pixels(image) -> np.ndarray:
    """Accept BGR uint8 (H, W, 3) of at least MIN_SIDE px; raise Skip with the reason otherwise."""
    if image is None:
        raise Skip("unreadable")
    if image.dtype != np.uint8:
        raise Skip(f"not 8-bit ({image.dtype})")
    if image.ndim != 3 or image.shape[2] != 3:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise Skip(f"{channels} channel(s) instead of 3")
    if min(image.shape[:2]) < MIN_SIDE:
        raise Skip(f"smaller than {MIN_SIDE} px")
    return image


def read_image(path: Path) -> np.ndarray:
    import cv2

    try:
        return check_pixels(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    except cv2.error:
        raise Skip("unreadable") from None


def seeded_order(n: int, size: int, seed: int) -> list[int]:
    """All candidates when they fit, else a seeded permutation (collected samples are re-sorted later)."""
    if n <= size:
        return list(range(n))
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def spread(n: int, k: int, offset: float) -> list[int]:
    """``k`` of ``range(n)`` spread evenly over all of it: one in each of ``k`` equal intervals, at ``offset``
    (0 <= offset < 1) of the way into it; all of them when ``k >= n``. Increasing, no repeats."""
    if k >= n:
        return list(range(n))
    return [int((i + offset) * n / k) for i in range(k)]


def fair_shares(capacities: list[int], size: int) -> list[int]:
    """Split ``size`` evenly over streams holding ``capacities`` items; a stream gets at most its capacity and
    what it cannot take goes to the others (earlier streams get the remainder of an uneven split)."""
    shares = [0] * len(capacities)
    left, open_ = int(size), [i for i, c in enumerate(capacities) if c > 0]
    while left > 0 and open_:
        each, extra = divmod(left, len(open_))
        for j, i in enumerate(open_):
            give = min(capacities[i] - shares[i], each + (1 if j < extra else 0))
            shares[i] += give
            left -= give
        open_ = [i for i in open_ if shares[i] < capacities[i]]
    return shares


def stream_seed(seed: int, stream: int) -> int:
    """The seed of one stream of a multi-stream source (independent of the others, fixed by ``seed``)."""
    return int(np.random.default_rng([int(seed), int(stream)]).integers(2**31))


# ---- readers -------------------------------------------------------------------------------------
class Reader:
    """One source or stream. ``capacity``: how many frames it can give (None: as many as asked)."""

    expects = ""
    label = ""

    def __init__(self) -> None:
        self.skipped: Counter = Counter()

    @property
    def capacity(self) -> int | None:
        return None

    def candidates(self, size: int, seed: int) -> Iterator[tuple[int, Callable[[], Frame]]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the source (videos)."""


class ImageFiles(Reader):
    """Image files (a folder's, or one file): a seeded subset when there are more than asked for."""

    expects = f"image files ({', '.join(IMAGE_EXTS)}) that OpenCV can read as 8-bit BGR"

    def __init__(self, files: list[Path], label: str) -> None:
        super().__init__()
        self.files, self.label = list(files), label

    @property
    def capacity(self) -> int:
        return len(self.files)

    def candidates(self, size, seed):
        for i in seeded_order(len(self.files), size, seed):
            yield i, (lambda p=self.files[i]: Frame(read_image(p), origin=p.name))


class CocoReader(Reader):
    """A COCO keypoints json: person boxes → top-down crops; whole images for bottom-up (``kind`` centernet)."""

    expects = "a COCO json whose images exist (and, for top-down models, person boxes)"

    def __init__(self, ann_file: Path, kind: str) -> None:
        from edgepose.data.coco import CocoKeypoints

        super().__init__()
        self.coco, self.label = CocoKeypoints(ann_file), str(ann_file)
        self.items: list[tuple[int, np.ndarray | None]] = []
        for image_id in self.coco.image_ids:
            if get_head(kind).bottom_up:
                self.items.append((image_id, None))
                continue
            for a in self.coco.annotations_for(image_id):
                x, y, w, h = (float(v) for v in a["bbox"])
                if not a.get("iscrowd", 0) and w > 1 and h > 1:
                    self.items.append((image_id, np.array([[x, y, x + w, y + h]], np.float32)))
        self._cache: tuple[int, np.ndarray] | None = None

    @property
    def capacity(self) -> int:
        return len(self.items)

    def _image(self, image_id: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != image_id:
            path = self.coco.image_path(image_id)
            if not path.is_file():
                raise Skip("missing image file")
            self._cache = (image_id, read_image(path))
        return self._cache[1]

    def candidates(self, size, seed):
        for i in seeded_order(len(self.items), size, seed):
            image_id, box = self.items[i]
            yield i, (lambda k=image_id, b=box: Frame(self._image(k), b, k, origin=f"image {k}"))


class VideoReader(Reader):
    """A video file: ``size`` of its frames (every ``stride``-th one eligible), spread over its whole length."""

    expects = "a video with decodable frames"

    def __init__(self, path: Path, stride: int = 1) -> None:
        super().__init__()
        self.path, self.stride, self.label = Path(path), int(stride), str(path)
        self.frames = _frame_count(self.path)

    @property
    def capacity(self) -> int:
        return -(-self.frames // self.stride)

    def picks(self, size: int, seed: int) -> list[int]:
        """The frame numbers ``candidates`` reads, in order."""
        offset = float(np.random.default_rng(int(seed)).random())
        return [i * self.stride for i in spread(self.capacity, int(size), offset)]

    def candidates(self, size, seed):
        import cv2

        wanted = self.picks(size, seed)
        cap = cv2.VideoCapture(str(self.path))
        try:
            frame_no = 0
            for pick in wanted:
                while frame_no < pick and cap.grab():
                    frame_no += 1
                ok = frame_no == pick and cap.grab()
                frame = cap.retrieve()[1] if ok else None
                frame_no += bool(ok)
                if not ok:
                    yield pick, _skip(f"beyond the last decodable frame (the header says {self.frames})")
                else:
                    yield pick, (lambda f=frame, n=pick: Frame(check_pixels(f), origin=f"{self.path.name} frame {n}"))
        finally:
            cap.release()


def _skip(reason: str) -> Callable[[], Frame]:
    def load() -> Frame:
        raise Skip(reason)

    return load


def _frame_count(path: Path) -> int:
    """Frames in a video: the header's count, else (no count there) counted by decoding; DataError when OpenCV
    cannot open it or finds no frame."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"cannot open video {path} (OpenCV could not read it); expected a readable video file")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n <= 0:
            while cap.grab():
                n += 1
    finally:
        cap.release()
    if n <= 0:
        raise DataError(f"video {path} has no decodable frames; expected a readable video file")
    return n


class SyntheticReader(Reader):
    expects = "synthetic[:N] with N >= 1"

    def __init__(self, kind: str, count: int, seed: int) -> None:
        super().__init__()
        self.kind, self.count, self.seed, self.label = kind, int(count), int(seed), f"synthetic:{count}"

    @property
    def capacity(self) -> int:
        return self.count

    def _render(self, i: int) -> Frame:
        from edgepose.data.synthetic import render_sample

        rng = np.random.default_rng([CALIB_SEED + self.seed, i])
        multi = get_head(self.kind).bottom_up
        image, anns = render_sample(rng, mode="multi" if multi else "single",
                                    image_size=(256, 256) if multi else (192, 256))
        if multi:
            return Frame(image, origin=f"synthetic {i}")
        x, y, w, h = anns[0]["bbox"]
        return Frame(image, np.array([[x, y, x + w, y + h]], np.float32), origin=f"synthetic {i}")

    def candidates(self, size, seed):
        for i in range(self.count):
            yield i, (lambda k=i: self._render(k))


class MultiReader(Reader):
    """Several streams; each gets its :func:`fair_shares` part of ``size``, counted in successful loads (an
    unusable image is replaced from its own folder; an unusable video frame is not). Indices are
    ``(stream, index)``."""

    def __init__(self, streams: list[Reader]) -> None:
        super().__init__()
        self.streams = list(streams)
        self.expects = " or ".join(dict.fromkeys(s.expects for s in self.streams))
        self.current = ""

    def shares(self, size: int) -> list[int]:
        return fair_shares([int(size) if s.capacity is None else s.capacity for s in self.streams], size)

    def candidates(self, size, seed):
        for number, (stream, share) in enumerate(zip(self.streams, self.shares(size))):
            if share == 0:
                continue
            self.current, got = Path(stream.label).name, [0]
            for index, load in stream.candidates(share, stream_seed(seed, number)):
                if got[0] >= share:
                    break
                yield (number, index), _counting(load, got)
            stream.close()

    def close(self) -> None:
        for s in self.streams:
            s.close()


def _counting(load: Callable[[], Frame], got: list) -> Callable[[], Frame]:
    def counted() -> Frame:
        frame = load()
        got[0] += 1
        return frame

    return counted


# ---- opening sources ------------------------------------------------------------------------------
def take_frames(reader: Reader, size: int, seed: int, skipped: Counter, label: str,
                progress: bool = True) -> Iterator[tuple[int, Frame]]:
    """Yield up to ``size`` usable (index, frame) of ``reader``'s candidates with a progress bar; frames a
    reader skips are counted in ``skipped`` by reason. The reader is closed when the generator ends."""
    from edgepose.utils.progress import Progress

    taken = 0
    bar = Progress(size, label, enabled=progress)
    try:
        for index, load in reader.candidates(size, seed):
            try:
                frame = load()
            except Skip as why:
                skipped[str(why)] += 1
                continue
            yield index, frame
            taken += 1
            bar.update(postfix=getattr(reader, "current", None))
            if taken >= size:
                break
    finally:
        bar.close()
        reader.close()


def skip_reasons(skipped: Counter) -> str:
    """'3 unreadable, 1 too small' — why frames were skipped, for an error message."""
    return ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()))


def source_list(source) -> list[str]:
    """``source`` (a str / Path, or a list / tuple of them) as a list of strings; ConfigError when empty."""
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    if not items or any(not isinstance(s, (str, Path)) or not str(s) for s in items):
        raise ConfigError(f"expected a source or a non-empty list of sources ({EXPECTED}); received {source!r}")
    return [str(s) for s in items]


def synthetic_count(text: str) -> int | None:
    """N of ``synthetic:N`` (None for bare ``synthetic``); ConfigError for anything else after the colon."""
    rest = text.partition(":")[2]
    if not rest:
        return None
    try:
        n = int(rest)
    except ValueError:
        raise ConfigError(f"calibration source {text!r}: expected synthetic[:N], got {rest!r} for N") from None
    if n < 1:
        raise ConfigError(f"calibration source {text!r}: N must be >= 1")
    return n


def open_path(path: Path, kind: str, stride: int, skipped: Counter, what: str = "calibration source") -> list[Reader]:
    """The streams of one path (a folder gives one per video plus one for its images); files a folder holds that
    are neither images nor videos are counted in ``skipped``."""
    if not path.exists():
        raise DataError(f"{what} not found: {path} (expected an image folder, a video file, a folder of videos, "
                        "an image, a COCO json or synthetic[:N])")
    if path.is_dir():
        return _open_folder(path, stride, skipped)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return [CocoReader(path, kind)]
    if suffix in VIDEO_EXTS:
        return [VideoReader(path, stride)]
    if suffix in IMAGE_EXTS:
        return [ImageFiles([path], str(path))]
    raise DataError(f"{what} {path} has unsupported type {path.suffix or '(none)'!r}; expected a folder, a .json, "
                    f"an image ({', '.join(IMAGE_EXTS)}) or a video ({', '.join(VIDEO_EXTS)})")


def _open_folder(folder: Path, stride: int, skipped: Counter) -> list[Reader]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTS]
    if len(files) > len(images) + len(videos):
        skipped["unsupported file type"] += len(files) - len(images) - len(videos)
    streams: list[Reader] = []
    for v in videos:
        try:
            streams.append(VideoReader(v, stride))
        except DataError:  # one bad clip in a folder is skipped and counted, as a bad image is
            skipped["unreadable video"] += 1
    return [ImageFiles(images, str(folder)), *streams] if images or not streams else streams


def open_source(source, kind: str, *, size: int, seed: int = 0, stride: int = 1,
                what: str = "calibration source") -> Reader:
    """One reader over every stream of ``source`` (see the module docstring); a single stream is returned as
    itself. Files of a folder that cannot be used are in the reader's ``skipped``."""
    skipped: Counter = Counter()
    streams: list[Reader] = []
    items = source_list(source)
    for text in items:
        if text.partition(":")[0] == "synthetic":
            streams.append(SyntheticReader(kind, synthetic_count(text) or int(size), seed))
            continue
        before = Counter(skipped)
        opened = open_path(Path(text), kind, stride, skipped, what)
        if len(items) > 1 and sum(s.capacity or 0 for s in opened) == 0:  # alone, it says "no usable samples"
            why = ", ".join(f"{n} {r}" for r, n in sorted((skipped - before).items()))
            raise DataError(f"{what} {text} holds no images or videos{f' ({why})' if why else ''}; expected "
                            f"{EXPECTED}")
        streams += opened
    reader = streams[0] if len(streams) == 1 else MultiReader(streams)
    reader.skipped.update(skipped)
    return reader
