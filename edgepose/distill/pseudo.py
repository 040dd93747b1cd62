"""Pseudo-labels from a real teacher: unlabelled frames → a COCO keypoints dataset (for ``edgepose distill``).

Two teachers, as a deployment would run them: a bottom-up ``person`` model finds the people and their boxes on the
whole frame (MoveNet MultiPose by default, run near the frame's own resolution so that small pedestrians are
found), and a top-down ``joints`` model reads each person's joints inside that box (MoveNet Thunder by default).

- a person is kept when the person teacher scores it >= ``person_score`` and the joint teacher is confident
  (>= ``joint_score``) about at least ``min_joints`` of its joints; joints below ``joint_score`` are unlabelled
  (COCO visibility 0: no training target, no OKS term);
- a person the person teacher sees (>= ``IGNORE_SCORE``) but that is not kept becomes a crowd region (ignored by
  evaluation, not a target of training): a half-seen person is neither a positive nor a negative example;
- the COCO ``bbox`` is the person teacher's box joined with the confident joints' extent; ``area`` (the OKS scale)
  is the area of that extent, at least ``MIN_AREA_FRACTION`` of the box (as the label-free gate does).

Frames are stored as JPEG (quality 95), the longest side at most ``store_side`` px, with the labels scaled to
match; every image records its ``video`` (the stream it came from) and ``frame`` number, so that training and
held-out sets are split by whole video. The result is cached under ``$EDGEPOSE_CACHE/distill/<key>``, the key
covering the teachers (names and weight bytes), the options and every source file's bytes; a folder is written
beside it and renamed into place, so an interrupted run leaves nothing half-made.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import ConfigError, DataError

# bump when the labelling rules change: old cache entries are then not reused. 2: the person teacher really runs at
# the frame's aspect (version 1 fell back to MultiPose's own 256x256 without a word: the resize failed on the
# checkpoint's load record)
LABEL_VERSION = 2
IGNORE_SCORE = 0.1
MIN_AREA_FRACTION = 0.05
BOX_PAD = 0.05  # the joined box grows by this fraction of its size on every side (joints sit on the body's edge)
JPEG_QUALITY = 95


@dataclass
class LabelOptions:
    person_score: float = 0.15
    joint_score: float = 0.3
    min_joints: int = 6
    frame_stride: int = 1
    person_side: int = 640  # the person teacher's input: the frame scaled to this longest side (multiple of 32)
    store_side: int = 960

    def validate(self) -> None:
        for name in ("person_score", "joint_score"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1), got {v}")
        for name, lo in (("min_joints", 1), ("frame_stride", 1), ("person_side", 64), ("store_side", 64)):
            if getattr(self, name) < lo:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(self, name)}")


class Teacher:
    """The two teacher models (names or checkpoints) as runtimes, checked against the student's schema."""

    def __init__(self, person: str, joints: str, *, keypoints: str, threads: int | None = None):
        from edgepose.models.checkpoint import load_model
        from edgepose.runtimes.torch import TorchRuntime

        self.names = {"person": str(person), "joints": str(joints)}
        self.threads = threads
        person_model = load_model(person)
        joint_model = load_model(joints)
        _check_teacher(person_model, "--person-teacher", bottom_up=True, keypoints=keypoints)
        _check_teacher(joint_model, "--teacher", bottom_up=False, keypoints=keypoints)
        self._person_model, self._person_rts = person_model, {}
        self.joints = TorchRuntime(joint_model, threads=threads).load()
        self.digest = _weights_digest(person_model) + _weights_digest(joint_model)

    def person_runtime(self, size: tuple[int, int]):
        """The person teacher at input ``size`` (w, h), built once per size (its weights are shared)."""
        from edgepose.runtimes.torch import TorchRuntime

        if size not in self._person_rts:
            model = self._person_model
            if tuple(model.edgepose_meta.input_size) != size:
                model = _resized(model, size)
            self._person_rts[size] = TorchRuntime(model, threads=self.threads).load()
        return self._person_rts[size]

    def close(self) -> None:
        for rt in [self.joints, *self._person_rts.values()]:
            rt.close()


def _check_teacher(model, flag: str, *, bottom_up: bool, keypoints: str) -> None:
    from edgepose.heads import get_head
    from edgepose.keypoints import get_schema

    meta = getattr(model, "edgepose_meta", None)
    if meta is None:
        raise ConfigError(f"{flag}: {type(model).__name__} is not an edgepose keypoint model; expected a registered "
                          "model name or an edgepose checkpoint")
    head = get_head(meta.kind)
    if head.bottom_up != bottom_up:
        want = "a bottom-up model that finds every person in a frame (e.g. movenet-multipose)" if bottom_up else \
            "a top-down model that reads one person's joints in a box (e.g. movenet-thunder)"
        raise ConfigError(f"{flag} {meta.name} is a {meta.kind!r} model; expected {want}")
    have, want_k = get_schema(meta.keypoints), get_schema(keypoints)
    if have.names != want_k.names:
        raise ConfigError(f"{flag} {meta.name} predicts {have.name!r} keypoints ({have.num_keypoints}); the student "
                          f"predicts {want_k.name!r} ({want_k.num_keypoints}); expected a teacher of the same schema")


def _resized(model, size: tuple[int, int]):
    """A copy of a registered model at another input size (same weights); the model itself when it cannot be."""
    from edgepose.models import create
    from edgepose.models.checkpoint import INFO_KEY

    meta = model.edgepose_meta
    config = {k: v for k, v in (meta.config or {}).items() if k != INFO_KEY}  # a checkpoint's load record
    config["input_size"] = list(size)
    try:
        resized = create(meta.name, **config)
    except ConfigError as why:  # a size this model refuses: it runs at its own (letterboxed), and says so
        import warnings

        warnings.warn(f"person teacher {meta.name} stays at {tuple(meta.input_size)}: {why}", stacklevel=2)
        return model
    resized.load_state_dict(model.state_dict())
    return resized.eval()


def _weights_digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def person_size(width: int, height: int, side: int) -> tuple[int, int]:
    """The person teacher's input (w, h) for a frame: its aspect ratio, longest side ``side``, multiples of 32."""
    scale = side / max(width, height)
    return tuple(max(32, int(round(v * scale / 32)) * 32) for v in (width, height))  # type: ignore[return-value]


# ---- labelling one frame -------------------------------------------------------------------------
def label_frame(teacher: Teacher, image: np.ndarray, opts: LabelOptions) -> tuple[list[dict], Counter]:
    """COCO annotations (no ids yet; coordinates of ``image``) of the people in one BGR frame, and counts of
    what was dropped and why. The joint teacher reads every person box of the frame in one call."""
    h, w = image.shape[:2]
    found = teacher.person_runtime(person_size(w, h, opts.person_side))(image, score_threshold=IGNORE_SCORE)
    boxes = np.clip(np.asarray(found.boxes, np.float64).reshape(-1, 4), 0, [w - 1, h - 1, w - 1, h - 1])
    big = (boxes[:, 2] - boxes[:, 0] >= 4) & (boxes[:, 3] - boxes[:, 1] >= 4)
    why = Counter({"box under 4 px": int((~big).sum())} if not big.all() else {})
    if not big.any():
        return [], why
    boxes, scores = boxes[big], np.asarray(found.scores)[big]
    joints = teacher.joints(image, boxes=boxes.astype(np.float32)).keypoints
    anns = []
    for kps, box, score in zip(joints, boxes, scores):
        vis = kps[:, 2] >= opts.joint_score
        keep = score >= opts.person_score and vis.sum() >= opts.min_joints
        if not keep:
            why["person score below --person-score" if score < opts.person_score else
                "fewer confident joints than --min-joints"] += 1
        anns.append(_annotation(kps, vis, box, (w, h), crowd=not keep, score=float(score)))
    return anns, why


def _annotation(kps: np.ndarray, vis: np.ndarray, box: np.ndarray, size: tuple[int, int], *, crowd: bool,
                score: float) -> dict:
    pts = kps[vis, :2].astype(np.float64)
    lo = np.minimum(box[:2], pts.min(axis=0)) if len(pts) else box[:2]
    hi = np.maximum(box[2:], pts.max(axis=0)) if len(pts) else box[2:]
    pad = (hi - lo) * BOX_PAD
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, np.array(size, np.float64) - 1)
    bw, bh = hi - lo
    extent = np.prod(pts.max(axis=0) - pts.min(axis=0)) if len(pts) >= 2 else 0.0
    flat = np.zeros((len(kps), 3), np.float64)
    flat[vis, :2], flat[vis, 2] = kps[vis, :2], 2
    return {"category_id": 1, "iscrowd": int(crowd), "num_keypoints": 0 if crowd else int(vis.sum()),
            "bbox": [round(float(v), 2) for v in (lo[0], lo[1], bw, bh)],
            "area": round(max(float(extent), MIN_AREA_FRACTION * bw * bh, 1.0), 2),
            "keypoints": [0.0] * flat.size if crowd else [round(float(v), 2) for v in flat.reshape(-1)],
            "teacher_score": round(score, 4)}


def _scaled(ann: dict, s: float) -> dict:
    out = dict(ann)
    out["bbox"] = [round(v * s, 2) for v in ann["bbox"]]
    out["area"] = round(ann["area"] * s * s, 2)
    k = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
    k[:, :2] *= s
    out["keypoints"] = [round(float(v), 2) for v in k.reshape(-1)]
    return out


# ---- sources, cache ------------------------------------------------------------------------------
def source_files(sources) -> list[Path]:
    """Every image / video file of ``sources`` (files, folders), sorted within folders; a one-line error for a
    missing path, an unsupported file and a folder holding neither images nor videos."""
    from edgepose.calibration.frames import IMAGE_EXTS, VIDEO_EXTS, source_list

    usable = IMAGE_EXTS + VIDEO_EXTS
    out: list[Path] = []
    for text in source_list(sources):
        p = Path(text)
        if not p.exists():
            raise DataError(f"--data {p}: not found; expected a video, an image, or a folder of them")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in usable
                           and not f.name.startswith("."))
            if not files:
                raise DataError(f"--data {p}: the folder holds no images or videos ({', '.join(usable)}); "
                                "expected real footage to pseudo-label")
            out += files
        elif p.suffix.lower() in usable:
            out.append(p)
        else:
            raise DataError(f"--data {p}: unsupported type {p.suffix or '(none)'!r}; expected a video "
                            f"({', '.join(VIDEO_EXTS)}), an image ({', '.join(IMAGE_EXTS)}) or a folder")
    return out


def cache_key(files: list[Path], teacher: Teacher, opts: LabelOptions) -> str:
    h = hashlib.sha256(json.dumps({"version": LABEL_VERSION, "teachers": teacher.names, "weights": teacher.digest,
                                   "options": asdict(opts)}, sort_keys=True).encode())
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:20]


def _readers(files: list[Path], stride: int) -> list:
    """One calibration frame reader per file (edgepose.calibration.frames): every ``stride``-th frame of a video,
    an image file as one frame; a video OpenCV cannot open is a one-line DataError."""
    from edgepose.calibration.frames import IMAGE_EXTS, ImageFiles, VideoReader

    return [ImageFiles([f], str(f)) if f.suffix.lower() in IMAGE_EXTS else VideoReader(f, stride) for f in files]


# ---- the labelled dataset ------------------------------------------------------------------------
def pseudo_label(sources, teacher: Teacher, opts: LabelOptions | None = None, *, root: Path | None = None,
                 progress: bool = True, log=print):
    """Label every (``frame_stride``-th) frame of ``sources`` with ``teacher`` → (CocoKeypoints, info dict); a
    cached result for the same teachers, options and source bytes is reused."""
    from edgepose.data.coco import CocoKeypoints
    from edgepose.data.sources import cache_dir
    from edgepose.utils.fs import make_public

    opts = opts or LabelOptions()
    opts.validate()
    files = source_files(sources)
    key = cache_key(files, teacher, opts)
    root = Path(root) if root is not None else cache_dir() / "distill"
    final = root / key
    if not (final / "labels.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            _write_labels(files, teacher, opts, tmp, progress)
            make_public(tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    else:
        log(f"pseudo-labels: reusing {final} (same teachers, options and source files)")
    info = json.loads((final / "info.json").read_text())
    return CocoKeypoints(final / "labels.json", final / "images"), info


def _write_labels(files: list[Path], teacher: Teacher, opts: LabelOptions, out: Path, progress: bool) -> None:
    """Label every frame of ``files`` into ``out`` (a temporary folder the caller renames into place)."""
    import cv2

    from edgepose.calibration.frames import VIDEO_EXTS, Skip
    from edgepose.keypoints import get_schema
    from edgepose.utils.progress import Progress

    (out / "images").mkdir()
    images, anns, dropped, skipped, per_video = [], [], Counter(), Counter(), Counter()
    readers = _readers(files, opts.frame_stride)
    bar = Progress(sum(r.capacity for r in readers), "pseudo-label", enabled=progress)
    start = time.perf_counter()
    for f, reader in zip(files, readers):
        video = f.stem if f.suffix.lower() in VIDEO_EXTS else f.parent.name
        for n, load in reader.candidates(reader.capacity, 0):
            try:
                frame = load().image
            except Skip as why:
                skipped[str(why)] += 1
                continue
            found, why = label_frame(teacher, frame, opts)
            dropped.update(why)
            s = min(1.0, opts.store_side / max(frame.shape[:2]))
            if s < 1.0:
                frame = cv2.resize(frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)),
                                   interpolation=cv2.INTER_AREA)
            image_id = len(images) + 1
            name = f"{image_id:06d}.jpg"
            cv2.imwrite(str(out / "images" / name), frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            images.append({"id": image_id, "file_name": name, "width": frame.shape[1], "height": frame.shape[0],
                           "video": video, "frame": n, "source": str(f)})
            for a in found:
                anns.append(dict(_scaled(a, s), id=len(anns) + 1, image_id=image_id))
                per_video[video] += not a["iscrowd"]
            bar.update(postfix=f"{video} {len(anns)} people")
        reader.close()
    bar.close()
    if not images:
        raise DataError(f"--data {', '.join(map(str, files))}: no usable frames ({dict(skipped)}); expected real "
                        "footage")
    schema = get_schema(teacher.joints.spec.keypoints)
    cat = {"id": 1, "name": "person", "keypoints": list(schema.names), "skeleton": []}
    (out / "labels.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": [cat]}))
    kept = [a for a in anns if not a["iscrowd"]]
    info = {"frames": len(images), "people": len(kept), "ignored_regions": len(anns) - len(kept),
            "joints": int(sum(a["num_keypoints"] for a in kept)), "people_per_video": dict(per_video),
            "dropped": dict(dropped), "skipped_frames": dict(skipped), "teachers": teacher.names,
            "options": asdict(opts), "seconds": round(time.perf_counter() - start, 1), "label_version": LABEL_VERSION}
    (out / "info.json").write_text(json.dumps(info))  # the folder becomes visible only when renamed: no temp files
