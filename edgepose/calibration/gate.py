"""The accuracy gate: a quantized bundle must keep the fp32 reference's OKS AP on held-out data.

Both the fp32 PyTorch reference and the quantized bundle's runtime are evaluated with
:func:`edgepose.eval.evaluate.evaluate` (OKS AP against the ground truth, both model families) on the same
images; the AP drop is reported in AP points (1.0 = 0.01 AP). The gate also measures how far the quantized
keypoints moved from the reference's: mean distance in image pixels over the joints the reference is
confident about (score >= ``SCORE_FLOOR``), overall and per keypoint.

Validation data, in order of preference: ``val`` (a COCO json, ``coco:ANN.json[:IMG_DIR]`` or
``synthetic-val[:N]``); the images of a COCO calibration source that calibration did not use; the
synthetic validation set. Unlabelled ``val`` (frames, videos) runs the label-free gate of
:mod:`edgepose.calibration.label_free`, a subclass of :class:`AccuracyGate`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import DataError
from edgepose.heads import get_head

SCORE_FLOOR = 0.2  # joints the reference scores below this are not compared (ties on unseen joints)
PERSON_FLOOR = 0.3  # bottom-up: reference people compared
DEFAULT_VAL = 300  # synthetic validation images (at 100 the default model's INT8 verdicts were all within noise)
MIN_VAL_IMAGES = 20  # below this many images or people a gate verdict is mostly noise
WEAK_REFERENCE_AP = 5.0  # AP points: a reference this weak cannot tell good quantization from bad
BOOTSTRAP_RESAMPLES = 1000  # image resamplings for the AP drop's interval (~0.3 s at 100 images)


@dataclass
class GateReport:
    """AP of reference and candidate (AP points, 0..100), drop, keypoint displacement (image px)."""

    ap_reference: float
    ap: float
    max_ap_drop: float
    mean_keypoint_error_px: float | None
    per_keypoint_error_px: dict
    val: str
    num_images: int
    runtime: str = ""
    latency_ms: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ap_drop(self) -> float:
        return self.ap_reference - self.ap

    @property
    def passed(self) -> bool:
        return self.ap_drop <= self.max_ap_drop

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % paired-bootstrap interval of the AP drop (AP points), when measured."""
        ci = self.extra.get("ap_drop_interval95")
        return (float(ci[0]), float(ci[1])) if ci else None

    def noise_note(self) -> str | None:
        """A note when the drop's interval does not back the verdict: the limit lies inside it, or the whole
        interval lies on the other side of the limit (possible: the resampled AP is not centred on the observed)."""
        ci, limit = self.interval, self.max_ap_drop
        if ci is None or not all(np.isfinite(ci)):
            return None
        if ci[0] <= limit <= ci[1]:
            where = f"spans the limit {limit:g}"
        elif (ci[0] > limit) == self.passed:
            where = f"lies {'above' if self.passed else 'below'} the limit {limit:g}"
        else:
            return None
        more = "frames (--val-size)" if self.extra.get("gate") == "label-free" else "images (--val)"
        return (f"the gate {'passed' if self.passed else 'failed'} with a drop of {self.ap_drop:.2f}, but the drop's "
                f"95 % interval over resampled images, {ci[0]:.2f} to {ci[1]:.2f}, {where}: at {self.num_images} "
                f"images the verdict is within noise; gate on more {more} to settle it")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        return dict(d, ap_drop=round(self.ap_drop, 3), passed=self.passed)

    def summary(self) -> str:
        px = "n/a" if self.mean_keypoint_error_px is None else f"{self.mean_keypoint_error_px:.2f} px"
        lat = "" if self.latency_ms is None else f", {self.latency_ms:.2f} ms"
        ci = self.interval
        spread = "" if ci is None or not all(np.isfinite(ci)) else f", 95 % interval {ci[0]:.2f} to {ci[1]:.2f}"
        free = self.extra.get("gate") == "label-free"
        own, what = (" on its own predictions", "frames") if free else ("", "images")
        pct = [self.extra.get(f"keypoint_error_px_p{q}") for q in (50, 90, 99)]
        pct_text = "" if None in pct else f" (p50 {pct[0]:.2f}, p90 {pct[1]:.2f}, p99 {pct[2]:.2f} px)"
        return (f"AP {self.ap:.1f} vs fp32 {self.ap_reference:.1f}{own} (drop {self.ap_drop:.2f}{spread}, limit "
                f"{self.max_ap_drop:g}), keypoints moved {px} on average{pct_text}{lat} — {self.num_images} {what} of "
                f"{self.val}")


class _Recorder:
    """Wraps a runtime: ``evaluate`` calls it per image; the Poses are kept in call order."""

    def __init__(self, rt):
        self.rt, self.poses = rt, []

    def __getattr__(self, name):
        return getattr(self.rt, name)

    def __call__(self, *args, **kwargs):
        poses = self.rt(*args, **kwargs)
        self.poses.append(poses)
        return poses


def resolve_val(val, calib, kind: str, workspace: Path, size: int = DEFAULT_VAL):
    """(CocoKeypoints, description) of the held-out data (see the module docstring)."""
    from edgepose.data.sources import resolve_dataset

    if val is not None:
        text = str(val)
        return resolve_dataset(text, get_head(kind).sample_mode, split="val", progress=False, flag="--val"), text
    held = _held_out(calib, workspace)
    if held is not None:
        return held
    text = f"synthetic-val:{size}"
    if calib is not None and not str(calib.source).startswith("synthetic"):
        warnings.warn(f"accuracy gate: {calib.source} leaves no held-out images with ground truth, so the gate "
                      f"runs on {text}, not on your kind of data; pass --val DATA to gate on your own (unlabelled "
                      "frames or videos give a label-free gate against the fp32 model's predictions)", stacklevel=2)
    return resolve_dataset(text, get_head(kind).sample_mode, split="val", progress=False), text


def validation_notes(coco, calib, reference_ap: float, num_images: int) -> list[str]:
    """Why a gate verdict on this validation set may mean less than it says (each note is also warned)."""
    notes = []
    people = sum(a.get("num_keypoints", 1) > 0 for i in coco.image_ids for a in coco.annotations_for(i))
    if num_images < MIN_VAL_IMAGES or people < MIN_VAL_IMAGES:
        notes.append(f"only {num_images} images / {people} people to gate on: the AP drop is noisy at this size "
                     f"(>= {MIN_VAL_IMAGES} of each recommended)")
    if reference_ap < WEAK_REFERENCE_AP:
        notes.append(f"the fp32 reference scores AP {reference_ap:.1f} here: the model finds little in this data, "
                     "so the gate cannot tell a good INT8 model from a bad one")
    overlap = _overlap(coco, calib)
    if overlap:
        notes.append(f"{overlap} validation image(s) were also calibration images: the gate is not held out")
    for note in notes:
        warnings.warn(f"accuracy gate: {note}", stacklevel=2)
    return notes


def _overlap(coco, calib) -> int:
    """Validation images that calibration also read (same file), for COCO, image-folder and image calibration."""
    if calib is None:
        return 0
    val_files = {Path(coco.image_path(i)).resolve() for i in coco.image_ids}
    return len(val_files & calibration_files(calib))


def calibration_files(calib) -> set[Path]:
    """The files (resolved) that calibration read from: a folder's files, a COCO json's used images, an image or
    video; nothing for synthetic data."""
    used: set[Path] = set()
    for text in getattr(calib, "sources", None) or [str(calib.source)]:
        src = Path(str(text))
        if str(text).startswith("synthetic"):
            continue
        if src.is_dir():
            used |= {p.resolve() for p in src.rglob("*") if p.is_file()}
        elif src.suffix == ".json" and src.is_file():
            from edgepose.data.coco import CocoKeypoints

            cal = CocoKeypoints(src)
            used |= {Path(cal.image_path(i)).resolve() for i in calib.image_ids if i in set(cal.image_ids)}
        elif src.is_file():
            used.add(src.resolve())
    return used


def _held_out(calib, workspace: Path):
    """The images of a COCO calibration source that calibration did not use (None if there are none)."""
    from edgepose.data.coco import CocoKeypoints

    if calib is None or not str(calib.source).endswith(".json") or not Path(calib.source).is_file():
        return None
    coco = CocoKeypoints(calib.source)
    used = set(calib.image_ids)
    keep = [i for i in coco.image_ids if i not in used]
    if not keep:
        return None
    data = coco.to_coco_dict()
    data["images"] = [im for im in data["images"] if int(im["id"]) in set(keep)]
    data["annotations"] = [a for a in data["annotations"] if int(a["image_id"]) in set(keep)]
    path = Path(workspace) / "heldout_val.json"
    path.write_text(json.dumps(data))
    return CocoKeypoints(path, coco.img_dir), f"{calib.source} (held-out {len(keep)} images)"


def _distances(ref_poses, cand_poses, kind: str):
    """(distance (K,) image px, mask (K,) of joints the reference is confident about) per matched person."""
    for ref, cand in zip(ref_poses, cand_poses):
        for r, c in get_head(kind).pair_people(ref, cand, PERSON_FLOOR):
            yield np.linalg.norm(r[:, :2] - c[:, :2], axis=-1), r[:, 2] >= SCORE_FLOOR


def keypoint_displacement(ref_poses, cand_poses, kind: str, names) -> tuple[float | None, dict]:
    """Mean distance (image px) between reference and candidate keypoints, overall and per keypoint name."""
    k = len(names)
    total, count = np.zeros(k), np.zeros(k)
    for dist, mask in _distances(ref_poses, cand_poses, kind):
        total += np.where(mask, dist, 0.0)
        count += mask
    if count.sum() == 0:
        return None, {}
    per = {n: round(float(t / c), 3) for n, t, c in zip(names, total, count) if c > 0}
    return round(float(total.sum() / count.sum()), 3), per


def displacement_percentiles(ref_poses, cand_poses, kind: str, percentiles=(50, 90, 99)) -> dict:
    """{"keypoint_error_px_p50": ..., ...}: percentiles of the reference-to-candidate distance (image px) over
    every joint the reference is confident about; empty when there is none."""
    dists = [d[m] for d, m in _distances(ref_poses, cand_poses, kind)]
    flat = np.concatenate(dists) if dists else np.zeros(0)
    if flat.size == 0:
        return {}
    values = np.percentile(flat, percentiles)
    return {f"keypoint_error_px_p{q}": round(float(v), 3) for q, v in zip(percentiles, values)}


def quick_latency(rt, batch: np.ndarray, runs: int = 30) -> float:
    """Median ms of ``rt.infer`` on one batch (a few warm-up runs first)."""
    from edgepose.utils.timing import median_ms

    return median_ms(lambda: rt.infer(batch), runs, warmup=3)


class AccuracyGate:
    """Evaluates the fp32 reference once, then any number of candidate runtimes against it."""

    gate_kind = "labelled"  # manifest.accuracy.gate; edgepose.calibration.label_free has the "label-free" one

    def __init__(self, reference, coco, *, max_ap_drop: float = 1.0, val_name: str = "", max_images=None,
                 log=print):
        from edgepose.eval.evaluate import evaluate
        from edgepose.keypoints import get_schema

        if len(coco.image_ids) == 0:
            raise DataError(f"validation set {val_name} has no images")
        self.coco, self.max_ap_drop, self.val_name, self.max_images = coco, float(max_ap_drop), val_name, max_images
        self.kind = reference.spec.kind
        self.names = get_schema(reference.spec.keypoints).names
        rec = _Recorder(reference)
        self.reference_stats = evaluate(rec, coco, max_images=max_images, progress=False, keep_matches=True)
        self.reference_matches = self.reference_stats.pop("matches")
        self.reference_poses = rec.poses
        self.num_images = int(self.reference_stats["num_images"])
        (log or (lambda *_: None))(self._reference_line())

    def _reference_line(self) -> str:
        return (f"accuracy gate: fp32 reference AP {100 * self.reference_stats['AP']:.1f} on {self.num_images} "
                f"images of {self.val_name}")

    def check(self, runtime, *, latency_batch: np.ndarray | None = None, label: str = "") -> GateReport:
        from edgepose.eval.evaluate import evaluate

        rec = _Recorder(runtime)
        stats = evaluate(rec, self.coco, max_images=self.max_images, progress=False, keep_matches=True)
        mean_px, per_kp = keypoint_displacement(self.reference_poses, rec.poses, self.kind, self.names)
        lat = quick_latency(runtime, latency_batch) if latency_batch is not None else None
        return GateReport(ap_reference=round(100 * self.reference_stats["AP"], 3), ap=round(100 * stats["AP"], 3),
                          max_ap_drop=self.max_ap_drop, mean_keypoint_error_px=mean_px, per_keypoint_error_px=per_kp,
                          val=self.val_name, num_images=self.num_images,
                          runtime=label or getattr(runtime, "backend", ""), latency_ms=lat,
                          extra=self._extra(stats.pop("matches"), rec.poses))

    def _extra(self, matches, poses) -> dict:
        """GateReport.extra of one candidate: the drop's interval (subclasses add their own)."""
        return self._interval(matches)

    def _interval(self, matches) -> dict:
        """{"ap_drop_interval95": [lo, hi]} in AP points (empty when either side has no results)."""
        from edgepose.eval.bootstrap import paired_drop_interval

        if self.reference_matches is None or matches is None:
            return {}
        lo, hi = paired_drop_interval(self.reference_matches, matches, resamples=BOOTSTRAP_RESAMPLES)
        return {"ap_drop_interval95": [round(100 * lo, 2), round(100 * hi, 2)]} if np.isfinite([lo, hi]).all() else {}
