"""The demo's annotated images: the models on the real photos and videos of ../shared/data.

Top-down: person boxes from the detector results shipped with coco-mini (``test_coco_det_AP_H_56.json``,
score >= 0.5), the way a camera pipeline runs a detector first; bottom-up: the whole frame. Without the
shared folder, generated frames are used instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgepose.pipeline.draw import draw_poses

DET_SCORE = 0.5
VIDEO_FRAMES = 8


def _photos(shared: Path | None) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """[(name, BGR image, detector boxes (N, 5) xyxy+score or None)] — real photos, else generated ones."""
    coco = shared / "coco-mini" if shared else None
    if coco is None or not (coco / "test_coco.json").is_file():
        from edgepose.data.synthetic import render_sample

        rng = np.random.default_rng(7)
        out = []
        for i in range(3):
            img, anns = render_sample(rng, mode="multi", image_size=(640, 480))
            boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3],
                               1.0] for a in anns], np.float32).reshape(-1, 5)
            out.append((f"generated-{i}", img, boxes))
        return out
    images = json.loads((coco / "test_coco.json").read_text())["images"]
    det_file = coco / "test_coco_det_AP_H_56.json"
    dets = json.loads(det_file.read_text()) if det_file.is_file() else []
    out = []
    for im in images:
        img = cv2.imread(str(coco / im["file_name"]))
        if img is None:
            continue
        rows = [d["bbox"] + [d["score"]] for d in dets if d["image_id"] == im["id"] and d["score"] >= DET_SCORE]
        boxes = (np.array([[x, y, x + w, y + h, s] for x, y, w, h, s in rows], np.float32).reshape(-1, 5)
                 if det_file.is_file() else None)  # no detections shipped: top-down models see the whole frame
        out.append((Path(im["file_name"]).stem, img, boxes))
    return out


SHEET_VIDEOS = ("sports2d-demo.mp4", "pose2sim-multiperson-cam03.mp4", "opencv-vtest.avi",
                "pose2sim-singleperson-cam03.mp4")


def _video_frames(shared: Path | None) -> tuple[str, list[np.ndarray]]:
    """(source name, frames): VIDEO_FRAMES frames spread over the real videos of real-video/ (two per video),
    else the first frames of the PoseTrack clip; none without the shared data."""
    vids = [shared / "real-video" / v for v in SHEET_VIDEOS] if shared else []
    if vids and all(v.is_file() for v in vids):
        frames = []
        for v in vids:
            cap = cv2.VideoCapture(str(v))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 2
            for pos in (n // 3, 2 * n // 3):
                cap.set(cv2.CAP_PROP_POS_FRAMES, pos)
                ok, frame = cap.read()
                if ok:
                    frames.append(frame)
            cap.release()
        return "real-video", frames
    vids = sorted((shared / "posetrack18-mini" / "videos").rglob("*.mp4")) if shared else []
    if not vids:
        return "", []
    cap = cv2.VideoCapture(str(vids[0]))
    frames = []
    while len(frames) < VIDEO_FRAMES:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return "posetrack18 video", frames


def _run(rt, img: np.ndarray, boxes):
    """Bottom-up: the whole frame; top-down: the detector's boxes (none → no people, not a whole-frame guess)."""
    if rt.spec.bottom_up or boxes is None:
        return rt(img)
    return rt(img, boxes)


def _save(path: Path, image: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp.jpg")
    if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, 85]):
        raise OSError(f"could not write {path}")
    tmp.replace(path)


def annotate(runtimes: dict[str, object], out_dir: Path, shared: Path | None) -> list[dict]:
    """Run each ``{label: loaded runtime}`` on the photos (and video frames, bottom-up) → JPEGs in out_dir.

    Returns [{"file", "model", "source", "people"}] for the report.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    photos = _photos(shared)
    source, frames = _video_frames(shared)
    for label, rt in runtimes.items():
        for name, img, boxes in photos:
            poses = _run(rt, img, boxes)
            path = out_dir / f"{label}-{name}.jpg"
            _save(path, draw_poses(img, poses, keypoints=rt.spec.keypoints, label=label))
            written.append({"file": path.name, "model": label, "source": name, "people": len(poses)})
        if frames and rt.spec.bottom_up:
            sheet = [draw_poses(f, rt(f), keypoints=rt.spec.keypoints, label=f"{label} frame {i}")
                     for i, f in enumerate(frames)]
            path = out_dir / f"{label}-{source.split()[0]}-frames.jpg"
            _save(path, _contact_sheet(sheet))
            written.append({"file": path.name, "model": label, "source": source, "people": None})
    return written


def _contact_sheet(frames: list[np.ndarray], cols: int = 4, width: int = 320) -> np.ndarray:
    """Frames fitted into equal width x 3/4 width cells (letterboxed: portrait and landscape videos mix)."""
    height = width * 3 // 4
    thumbs = []
    for f in frames:
        s = min(width / f.shape[1], height / f.shape[0])
        t = cv2.resize(f, (max(1, round(f.shape[1] * s)), max(1, round(f.shape[0] * s))))
        top, left = (height - t.shape[0]) // 2, (width - t.shape[1]) // 2
        thumbs.append(cv2.copyMakeBorder(t, top, height - t.shape[0] - top, left, width - t.shape[1] - left,
                                         cv2.BORDER_CONSTANT))
    thumbs += [np.zeros_like(thumbs[0])] * (-len(thumbs) % cols)
    rows = [np.hstack(thumbs[i:i + cols]) for i in range(0, len(thumbs), cols)]
    return np.vstack(rows)
