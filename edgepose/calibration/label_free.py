"""The label-free accuracy gate: gate INT8 on unlabelled footage, against the fp32 model's own predictions.

When ``val`` (``--val``) names unlabelled frames — an image folder, an image, a video, a folder of videos, or a
list of these (read by :mod:`edgepose.calibration.frames`: ``size`` frames, default 100, shared evenly across the
videos and spread over each) — the fp32 reference's predictions on those frames become the ground truth of a
temporary COCO dataset (frames as BMP files — exact, ~6 MB per 1080p frame — and a json in the export
workspace):

- bottom-up (``centernet``): every reference person scoring >= ``PERSON_FLOOR`` is a person, with its box (one
  that matches a higher-scoring one at OKS >= ``DUPLICATE_OKS`` is the same person found twice: an ignored region);
- top-down: the reference first looks at the whole frame; the box around the joints it is confident about,
  widened by ``BOX_PAD``, becomes the person box (the whole frame when it is confident about fewer than
  ``MIN_BOX_JOINTS`` joints), and its prediction on that box is the person;

in both, joints the reference scores >= ``SCORE_FLOOR`` are visible and the others unlabelled, and the OKS scale
(COCO's ``area``) is the area of the box around the visible joints (at least ``MIN_AREA_FRACTION`` of the person
box). Both models then run on exactly these frames and boxes (:class:`~edgepose.calibration.gate.AccuracyGate`):
the reference scores OKS AP 100 against itself by construction (the report says so and records the measured
value), so the AP of the quantized bundle is its agreement with fp32, and the drop keeps the paired-bootstrap
interval of the labelled gate. The report adds the percentiles (p50 / p90 / p99) of the keypoint displacement in
image pixels over the joints the reference is confident about.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from edgepose.calibration.frames import EXPECTED, VIDEO_EXTS, open_source, skip_reasons, source_list, take_frames
from edgepose.calibration.gate import (
    MIN_VAL_IMAGES,
    PERSON_FLOOR,
    SCORE_FLOOR,
    AccuracyGate,
    calibration_files,
    displacement_percentiles,
)
from edgepose.errors import ConfigError, DataError

DEFAULT_FRAMES = 100  # frames of unlabelled --val the gate runs on
VAL_SEED = 1  # frame offsets within a video differ from calibration's (seed 0)
BOX_PAD = 1.25  # top-down: person box = confident-joint extent x this (mmpose's padding of keypoint boxes)
MIN_BOX_JOINTS = 3  # top-down: fewer confident joints than this on the whole frame → the whole frame is the box
MIN_BOX_SIDE = 16  # px
MIN_AREA_FRACTION = 0.05  # OKS area >= this fraction of the person box (one or two visible joints have no extent)
DUPLICATE_OKS = 0.5  # bottom-up: two reference people this alike are one person found twice (see _mark_duplicates)
PERCENTILES = (50, 90, 99)
LABELLED = "'synthetic-val[:N]', 'coco:ANN.json[:IMG_DIR]' or a COCO .json file"
REFERENCE_NOTE = ("label-free: the ground truth is the fp32 reference's own predictions, so the reference scores "
                  "AP 100 by construction and the AP measures agreement with fp32, not accuracy")


def is_labelled(text: str) -> bool:
    """Whether a --val string names labelled data (synthetic-val, synthetic, coco:..., a .json)."""
    return str(text).partition(":")[0] in ("synthetic", "synthetic-val", "coco") or str(text).endswith(".json")


def is_label_free(val) -> bool:
    """Whether ``val`` names unlabelled frames (no I/O: see :func:`check_val` for the checks)."""
    return val is not None and not (len(source_list(val)) == 1 and is_labelled(source_list(val)[0]))


def check_val(val, size: int | None = None, flag: str = "--val") -> str | None:
    """Check ``val`` / ``size`` before any export work → None (no val), "labelled" or "label-free". Opens every
    video once (unreadable → DataError); ConfigError / DataError in one line otherwise."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"{flag}-size {size!r}: expected an integer >= 1 (frames of unlabelled {flag})")
    if val is None:
        if size is not None:
            raise ConfigError(f"{flag}-size {size} given without {flag}; expected it with unlabelled {flag} frames")
        return None
    items = source_list(val)
    labelled = [t for t in items if is_labelled(t)]
    if labelled and len(items) > 1:
        raise ConfigError(f"{flag} {', '.join(items)}: expected one labelled dataset ({LABELLED}) or unlabelled "
                          f"frames ({EXPECTED.replace(', a COCO json or synthetic[:N]', '')}), not a mix or several")
    if labelled:
        from edgepose.data.sources import parse_data_spec

        if size is not None:
            raise ConfigError(f"{flag}-size {size} given with labelled {flag} {items[0]}; expected it only with "
                              f"unlabelled frames (synthetic-val:N sets the count of synthetic images)")
        parse_data_spec(items[0], flag)
        return "labelled"
    missing = [t for t in items if not Path(t).exists()]
    if missing:
        raise DataError(f"{flag} {missing[0]!r}: not found; expected labelled data ({LABELLED}) or unlabelled "
                        "frames: an image folder, an image, a video or a folder of videos")
    reader = open_source(items, "heatmap", size=size or DEFAULT_FRAMES, what=f"{flag} source")
    reader.close()
    streams = getattr(reader, "streams", [reader])
    if sum(s.capacity or 0 for s in streams) == 0:
        raise DataError(f"{flag} {', '.join(items)} holds no images or videos; expected unlabelled frames: "
                        "an image folder, an image, a video or a folder of videos")
    return "label-free"


# ---- pseudo-labels --------------------------------------------------------------------------------
def person_box(reference, image: np.ndarray) -> tuple[np.ndarray, str]:
    """Top-down: (xyxy integer box, "reference" | "frame") — the padded box around the joints the reference is
    confident about on the whole frame, else the whole frame."""
    h, w = image.shape[:2]
    whole = np.array([0, 0, w, h], np.float32)
    kps = reference(image, boxes=whole[None]).keypoints[0]
    conf = kps[kps[:, 2] >= SCORE_FLOOR, :2]
    if len(conf) < MIN_BOX_JOINTS:
        return whole, "frame"
    lo, hi = conf.min(axis=0), conf.max(axis=0)
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2 * BOX_PAD, MIN_BOX_SIDE / 2)
    x0, y0 = np.floor(np.maximum(centre - half, 0))
    x1, y1 = np.ceil(np.minimum(centre + half, [w, h]))
    if x1 - x0 < MIN_BOX_SIDE or y1 - y0 < MIN_BOX_SIDE:
        return whole, "frame"
    return np.array([x0, y0, x1, y1], np.float32), "reference"


def _annotation(kps: np.ndarray, box: np.ndarray, image_id: int) -> dict | None:
    """A COCO person from reference keypoints (K, 3) and its xyxy box; None without a confident joint."""
    vis = kps[:, 2] >= SCORE_FLOOR
    if not vis.any():
        return None
    pts = kps[vis, :2]
    ext_w, ext_h = pts.max(axis=0) - pts.min(axis=0)
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    flat = np.zeros_like(kps, dtype=np.float64)
    flat[vis, :2], flat[vis, 2] = kps[vis, :2], 2
    return {"image_id": image_id, "category_id": 1, "iscrowd": 0, "num_keypoints": int(vis.sum()),
            "bbox": [float(box[0]), float(box[1]), bw, bh],
            "area": max(float(ext_w * ext_h), MIN_AREA_FRACTION * bw * bh, 1.0),
            "keypoints": [round(float(v), 3) for v in flat.reshape(-1)]}


def _oks(det: np.ndarray, gt: dict, sigmas: np.ndarray) -> float:
    """COCO OKS of keypoints ``det`` (K, 3) against annotation ``gt``'s visible ones (pycocotools' formula)."""
    g = np.asarray(gt["keypoints"], np.float64).reshape(-1, 3)
    vis = g[:, 2] > 0
    e = ((det[:, :2] - g[:, :2]) ** 2).sum(axis=1) / (2 * sigmas) ** 2 / (gt["area"] + np.spacing(1)) / 2
    return float(np.exp(-e[vis]).mean()) if vis.any() else 0.0


def _mark_duplicates(found: list[tuple[dict, np.ndarray]], sigmas: np.ndarray) -> list[dict]:
    """Bottom-up, (annotation, reference keypoints) in score order: a person whose keypoints match an earlier kept
    one's label at OKS >= ``DUPLICATE_OKS``, or the other way round, is one person found twice; COCO could match
    either detection to either label, so it becomes a crowd (ignored) region: neither the reference's nor a
    candidate's duplicate then counts, and the reference scores 100."""
    kept: list[tuple[dict, np.ndarray]] = []
    for ann, kps in found:
        if any(max(_oks(kps, k_ann, sigmas), _oks(k_kps, ann, sigmas)) >= DUPLICATE_OKS for k_ann, k_kps in kept):
            ann["iscrowd"] = 1
        else:
            kept.append((ann, kps))
    return [ann for ann, _ in found]


def _people(reference, image: np.ndarray, boxes: Counter) -> list[tuple[np.ndarray, np.ndarray]]:
    """(keypoints (K, 3), xyxy box) of the people the reference finds: exactly the calls evaluate() makes."""
    from edgepose.eval.evaluate import EVAL_SCORE_THRESHOLD

    if reference.spec.bottom_up:
        poses = reference(image, score_threshold=EVAL_SCORE_THRESHOLD)
        order = np.argsort(-poses.scores, kind="stable")  # the order COCOeval matches them in
        return [(poses.keypoints[i], poses.boxes[i]) for i in order if poses.scores[i] >= PERSON_FLOOR]
    box, how = person_box(reference, image)
    boxes[how] += 1
    return [(reference(image, boxes=box[None]).keypoints[0], box)]


def pseudo_labels(reference, val, folder: Path, *, size: int = DEFAULT_FRAMES, seed: int = VAL_SEED,
                  progress: bool = True):
    """Sample ``size`` frames of ``val``, write them as BMP to ``folder`` with the reference's predictions as a
    COCO json → (CocoKeypoints, info dict)."""
    import cv2

    from edgepose.data.coco import CocoKeypoints
    from edgepose.keypoints import get_schema

    items = source_list(val)
    sigmas = np.asarray(get_schema(reference.spec.keypoints).sigmas, np.float64)
    reader = open_source(items, reference.spec.kind, size=size, seed=seed, what="--val source")
    skipped, boxes = Counter(reader.skipped), Counter()
    images, anns = [], []
    for _, frame in take_frames(reader, size, seed, skipped, "label-free val", progress):
        image_id, (h, w) = len(images) + 1, frame.image.shape[:2]
        images.append({"id": image_id, "file_name": f"{image_id:05d}.bmp", "width": w, "height": h,
                       "origin": frame.origin})
        cv2.imwrite(str(folder / images[-1]["file_name"]), frame.image)  # exact and fast (PNG: 10x slower)
        found = [(_annotation(kps, box, image_id), kps) for kps, box in _people(reference, frame.image, boxes)]
        for ann in _mark_duplicates([(a, k) for a, k in found if a], sigmas):
            anns.append(dict(ann, id=len(anns) + 1))
    if not images:
        why = f" ({skip_reasons(skipped)})" if skipped else ""
        raise DataError(f"--val {', '.join(items)} gave no usable frames{why}; expected {reader.expects}")
    names = list(get_schema(reference.spec.keypoints).names)
    path = folder / "pseudo_labels.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]}))
    people = [a for a in anns if not a["iscrowd"]]
    info = {"frames": len(images), "people": len(people), "joints": int(sum(a["num_keypoints"] for a in people)),
            "duplicates_ignored": len(anns) - len(people), "skipped": dict(sorted(skipped.items())),
            "score_floor": SCORE_FLOOR}
    if reference.spec.bottom_up:
        info["person_floor"] = PERSON_FLOOR
    else:
        info["boxes"] = {"reference": boxes["reference"], "whole frame": boxes["frame"]}
    return CocoKeypoints(path, folder, schema=reference.spec.keypoints), info


# ---- the gate ------------------------------------------------------------------------------------
class LabelFreeGate(AccuracyGate):
    """:class:`AccuracyGate` on pseudo-labels: adds displacement percentiles and what the labels are."""

    gate_kind = "label-free"

    def __init__(self, reference, coco, *, pseudo: dict, **kwargs):
        self.pseudo = dict(pseudo)
        super().__init__(reference, coco, **kwargs)

    def _reference_line(self) -> str:
        return (f"accuracy gate (label-free): {self.pseudo['people']} people, {self.pseudo['joints']} confident "
                f"joints found by the fp32 reference in {self.num_images} frames of {self.val_name}; it scores AP "
                f"{100 * self.reference_stats['AP']:.1f} against them (100 by construction)")

    def _extra(self, matches, poses) -> dict:
        return dict(super()._extra(matches, poses), gate=self.gate_kind, reference_note=REFERENCE_NOTE,
                    pseudo_labels=dict(self.pseudo),
                    **displacement_percentiles(self.reference_poses, poses, self.kind, PERCENTILES))


def label_free_gate(reference, val, *, workspace: Path, size: int | None = None, max_ap_drop: float = 1.0,
                    calib=None, log=print, progress: bool = True) -> LabelFreeGate:
    """The gate on ``val``'s unlabelled frames (see the module docstring); ``gate.notes`` says what weakens it."""
    folder = Path(workspace) / "label-free-val"
    folder.mkdir(parents=True, exist_ok=True)
    coco, pseudo = pseudo_labels(reference, val, folder, size=int(size or DEFAULT_FRAMES), progress=progress)
    name = ", ".join(source_list(val))
    gate = LabelFreeGate(reference, coco, pseudo=pseudo, max_ap_drop=max_ap_drop, val_name=name, log=log)
    gate.notes = label_free_notes(gate, val, calib)
    return gate


def label_free_notes(gate: LabelFreeGate, val, calib) -> list[str]:
    """Why a label-free verdict may mean less than it says (each note is also warned)."""
    notes, people = [], gate.pseudo["people"]
    if gate.num_images < MIN_VAL_IMAGES or people < MIN_VAL_IMAGES:
        notes.append(f"only {gate.num_images} frames / {people} people the fp32 model is confident about: the AP "
                     f"drop is noisy at this size (>= {MIN_VAL_IMAGES} of each recommended; --val-size)")
    ap_ref = 100 * gate.reference_stats["AP"]
    if people and ap_ref < 99.9:
        notes.append(f"the fp32 reference scores AP {ap_ref:.1f} against its own pseudo-labels, not 100 (more "
                     "people in a frame than COCO's 20 detections?)")
    if calib is not None:
        shared = sorted(str(p) for p in _val_files(val) & calibration_files(calib))
        if shared:
            videos = sum(Path(p).suffix.lower() in VIDEO_EXTS for p in shared)
            notes.append(f"{len(shared)} validation file(s) ({videos} video(s)) were also calibration sources: other "
                         "frames are used, but frames of one video are correlated, so the gate is not fully held out")
    for note in notes:
        warnings.warn(f"accuracy gate: {note}", stacklevel=3)
    return notes


def _val_files(val) -> set[Path]:
    out: set[Path] = set()
    for text in source_list(val):
        p = Path(text)
        out |= {f.resolve() for f in p.rglob("*") if f.is_file()} if p.is_dir() else {p.resolve()}
    return out
