"""PoseTrack-style multi-person pose tracking evaluation: MOTA and ID switches per joint, with motmetrics.

As PoseTrack's own evaluation (poseval) defines it, tracking is scored joint by joint: for each joint type, the
ground-truth people whose joint is labelled and the predicted people whose joint scores at least
``keypoint_score`` are matched frame by frame within half a head size (PCKh@0.5; head size = 0.6 x the diagonal
of the annotated head box), as a multi-object tracking problem with the track ids on both sides. motmetrics
counts misses, false positives and ID switches; MOTA = 1 - (misses + false positives + ID switches) / ground-truth
joints, over all joints and videos. Only labelled frames are scored; the tracker sees every frame given.

Data: a PoseTrack 2018 annotation json (COCO style, images with ``vid_id`` / ``frame_id`` / ``is_labeled``,
annotations with ``track_id`` and ``bbox_head``), or a folder of them (one per video), and the dataset root the
images' ``file_name`` is relative to (default: the folder above the one named ``annotations``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.data.coco import read_json
from edgepose.errors import BackendUnavailable, ConfigError, DataError

HEAD_BIAS, PCKH = 0.6, 0.5


def _motmetrics():
    try:
        import motmetrics
    except ImportError:
        raise BackendUnavailable("motmetrics is not installed; PoseTrack tracking metrics need it: "
                                 "pip install 'edgepose[eval]'") from None
    return motmetrics


def parse_posetrack_spec(spec: str, flag: str = "--data") -> tuple[Path, Path]:
    """``posetrack:ANN.json|ANN_DIR[:ROOT]`` → (annotation path, dataset root); one-line ConfigErrors."""
    _, _, rest = spec.partition(":")
    ann, _, root = rest.partition(":")
    if not ann:
        raise ConfigError(f"{flag} {spec!r}: expected posetrack:ANN.json|ANN_DIR[:ROOT]")
    path = Path(ann)
    if not path.exists():
        raise ConfigError(f"{flag} {spec!r}: {ann} not found; expected a PoseTrack annotation json or a folder of them")
    if root:
        base = Path(root)
    else:
        up = [p for p in path.absolute().parents if p.name == "annotations"]
        base = up[0].parent if up else (path.parent if path.is_file() else path)
    if not base.is_dir():
        raise ConfigError(f"{flag} {spec!r}: image root {base} is not a folder")
    return path, base


def load_videos(path: str | Path) -> dict[str, list[dict]]:
    """{video id: frames in order}; each frame {"file_name", "labeled", "people": [(track_id, kps (K, 3), head
    box xywh or None)]}."""
    files = sorted(Path(path).glob("*.json")) if Path(path).is_dir() else [Path(path)]
    if not files:
        raise DataError(f"{path}: no .json files; expected PoseTrack annotation files")
    videos: dict[str, list[dict]] = {}
    for f in files:
        data = read_json(f, "PoseTrack annotation file")
        if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
            raise DataError(f"{f}: expected a PoseTrack (COCO-style) dict with 'images' and 'annotations'")
        people: dict = {}
        for a in data["annotations"]:
            kps = np.asarray(a.get("keypoints") or [], np.float32).reshape(-1, 3)
            if "track_id" not in a or not len(kps):
                continue
            people.setdefault(a["image_id"], []).append((int(a["track_id"]), kps, a.get("bbox_head")))
        for im in data["images"]:
            if "vid_id" not in im or "frame_id" not in im:
                raise DataError(f"{f}: image {im.get('id')} has no vid_id / frame_id; expected PoseTrack images")
            videos.setdefault(str(im["vid_id"]), []).append({
                "id": im["id"], "frame_id": im["frame_id"], "file_name": im["file_name"],
                "labeled": bool(im.get("is_labeled", True)), "people": people.get(im["id"], []),
                "ignore": _ignore_regions(im)})
    for frames in videos.values():
        frames.sort(key=lambda fr: fr["frame_id"])
    return videos


def _ignore_regions(image: dict) -> list[np.ndarray]:
    """The image's ignore regions (crowds, people too small to label) as (P, 2) float32 polygons."""
    xs, ys = image.get("ignore_regions_x") or [], image.get("ignore_regions_y") or []
    return [np.stack([np.asarray(x, np.float32), np.asarray(y, np.float32)], axis=1)
            for x, y in zip(xs, ys) if len(x) == len(y) and len(x) >= 3]


def _outside(points: np.ndarray, regions: list[np.ndarray]) -> np.ndarray:
    """(N,) True where a point lies in no ignore region: predictions there are not counted, as in poseval."""
    import cv2

    keep = np.ones(len(points), bool)
    for poly in regions:
        for i, (x, y) in enumerate(points):
            if keep[i] and cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0:
                keep[i] = False
    return keep


def _head_size(box) -> float:
    if box is None or len(box) != 4:
        return float("nan")
    return HEAD_BIAS * float(np.hypot(box[2], box[3]))


def accumulate(videos: dict[str, list[dict]], predictions: dict, *, keypoint_score: float = 0.3) -> dict:
    """MOT counts per joint over the labelled frames → {"MOTA", "num_switches", "num_misses",
    "num_false_positives", "num_objects", "per_joint": {k: MOTA}}. ``predictions``: {image id: (ids (N,),
    keypoints (N, K, 3))}."""
    mm = _motmetrics()
    k = next((len(p[1]) for fr in (f for v in videos.values() for f in v) for p in fr["people"]), None)
    if k is None:
        raise DataError("no labelled person with a track id and keypoints; expected PoseTrack ground truth")
    accs = [[mm.MOTAccumulator(auto_id=True) for _ in videos] for _ in range(k)]
    for v, frames in enumerate(videos.values()):
        for fr in (f for f in frames if f["labeled"]):
            ids, kps = predictions.get(fr["id"], (np.zeros(0, int), np.zeros((0, k, 3))))
            heads = np.array([_head_size(p[2]) for p in fr["people"]])
            for j in range(k):
                gt = [(p[0], p[1][j, :2]) for p in fr["people"] if p[1][j, 2] > 0]
                ok = kps[:, j, 2] >= keypoint_score if len(kps) else np.zeros(0, bool)
                if fr["ignore"] and ok.any():
                    ok[ok] = _outside(kps[ok, j, :2], fr["ignore"])
                hyp_ids, hyp_xy = np.asarray(ids)[ok], kps[ok, j, :2]
                gt_heads = np.array([h for p, h in zip(fr["people"], heads) if p[1][j, 2] > 0])
                dist = np.full((len(gt), len(hyp_ids)), np.nan)
                if len(gt) and len(hyp_ids):
                    d = np.linalg.norm(np.stack([g[1] for g in gt])[:, None] - hyp_xy[None], axis=-1)
                    rel = d / gt_heads[:, None]
                    dist = np.where(rel <= PCKH, rel, np.nan)
                accs[j][v].update([g[0] for g in gt], hyp_ids.tolist(), dist)
    return _summary(mm, accs)


def _summary(mm, accs) -> dict:
    names = ["num_objects", "num_misses", "num_false_positives", "num_switches"]
    mh = mm.metrics.create()
    totals = {n: 0 for n in names}
    per_joint = {}
    for j, video_accs in enumerate(accs):
        row = {n: 0 for n in names}
        for acc in video_accs:
            df = mh.compute(acc, metrics=names, name="x")
            for n in names:
                row[n] += int(df[n].iloc[0])
        per_joint[j] = 1 - (row["num_misses"] + row["num_false_positives"] + row["num_switches"]) / max(
            row["num_objects"], 1)
        for n in names:
            totals[n] += row[n]
    mota = 1 - (totals["num_misses"] + totals["num_false_positives"] + totals["num_switches"]) / max(
        totals["num_objects"], 1)
    return {"MOTA": float(mota), **totals, "per_joint": per_joint}


def track_dataset(rt, videos: dict[str, list[dict]], root: Path, *, tracker_factory, detections: dict | None = None,
                  progress: bool = True) -> dict:
    """Run ``rt`` and a fresh tracker per video over every frame in order → {image id: (ids, keypoints)}. Top-down
    models take their person boxes from ``detections`` ({image id: [(box, score)]})."""
    import cv2

    from edgepose.pipeline.preprocess import usable_boxes
    from edgepose.utils.progress import Progress

    out = {}
    bar = Progress(sum(len(v) for v in videos.values()), "posetrack", enabled=progress)
    for frames in videos.values():
        tracker = tracker_factory()
        for fr in frames:
            image = cv2.imread(str(root / fr["file_name"]))
            if image is None:
                raise DataError(f"image {root / fr['file_name']} is missing or unreadable; expected the PoseTrack "
                                "images under the dataset root")
            if rt.spec.bottom_up:
                poses, scores = rt(image), None
            else:
                dets = detections.get(fr["id"], [])
                boxes = np.asarray([[*b, s] for b, s in dets], np.float32).reshape(-1, 5)
                boxes = boxes[usable_boxes(boxes[:, :4], image.shape)]
                poses, scores = rt(image, boxes), boxes[:, 4]
            ids = tracker.update(poses, box_scores=scores)
            keep = ids >= 0
            out[fr["id"]] = (ids[keep], poses.keypoints[keep])
            bar.update()
    bar.close()
    return out


def evaluate_tracking(rt, spec: str, *, detections: dict | None = None, high_score: float | None = None,
                      keypoint_score: float = 0.3, progress: bool = True) -> dict:
    """``posetrack:...`` (see :func:`parse_posetrack_spec`) → the metrics of :func:`accumulate` plus counts. A person
    starts a track at ``high_score`` (default: ``edgepose run``'s, :data:`edgepose.pipeline.START_SCORE` on detector
    boxes, a bottom-up bundle's own threshold)."""
    from edgepose.pipeline import START_SCORE

    if high_score is None:
        high_score = START_SCORE if not rt.spec.bottom_up else float(rt.spec.score_threshold or 0.0)
    from edgepose.pipeline.track import PoseTracker, TrackOptions

    path, root = parse_posetrack_spec(spec)
    if not rt.spec.bottom_up and detections is None:
        raise ConfigError(f"--data {spec}: a top-down ({rt.spec.kind}) model needs person boxes to track; expected "
                          "--detections DET_JSON (e.g. the dataset's human detections) or a bottom-up model")
    videos = load_videos(path)
    options = TrackOptions(high_score=high_score, low_score=min(0.1, high_score), keypoint_score=keypoint_score)
    preds = track_dataset(rt, videos, root, tracker_factory=lambda: PoseTracker(options, keypoints=rt.spec.keypoints),
                          detections=detections, progress=progress)
    stats = accumulate(videos, preds, keypoint_score=keypoint_score)
    stats["num_videos"] = len(videos)
    stats["num_frames"] = sum(len(v) for v in videos.values())
    stats["num_labeled"] = sum(f["labeled"] for v in videos.values() for f in v)
    return stats
