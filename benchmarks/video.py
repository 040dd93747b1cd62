"""Video loop on real footage: FPS sequential vs pipelined and every-frame vs detect-every-N, keypoint jitter with
and without One-Euro smoothing, and track ids on the Pose2Sim multi-person videos (no ground truth: the count of ids
beyond the people on screen, i.e. fragmentations and switches to a new id; two tracks swapping ids are not seen).

    .venv/bin/python benchmarks/video.py --work /tmp/ep-video [--threads 2] [--frames 100]

Models: MoveNet Lightning (top-down, on boxes) with MoveNet MultiPose as the person detector, ONNX fp32 bundles
exported into --work (the real models `make demo` runs; the synthetic-trained defaults find no one in real video).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

VIDEOS = [f"pose2sim-multiperson-cam0{i}.mp4" for i in (1, 2, 3, 4)]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-video"


def bundles(work: Path) -> dict[str, Path]:
    import edgepose
    from edgepose.models import create

    out = {}
    for name in ("movenet-lightning", "movenet-multipose"):
        path = work / name
        if not (path / "manifest.json").exists():
            edgepose.export(create(name, weights="default"), target="onnx", out=path, log=None)
        out[name] = path
    return out


def run_mode(rt, det, *, pipelined: bool, detect_every: int, frames: int, work: Path, keep: list | None = None):
    """All four videos through run_stream with --track (video and JSON lines written) → (frames, seconds,
    detector runs, per-video stats)."""
    import cv2

    from edgepose.pipeline.track import PoseTracker, TrackOptions
    from edgepose.pipeline.video import VideoOutput, run_stream

    total_n, total_s, det_runs, per_video = 0, 0.0, 0, []
    for v in VIDEOS:
        cap = cv2.VideoCapture(str(SHARED / v))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        out = VideoOutput(work / "out.mp4", cap.get(cv2.CAP_PROP_FPS), size)
        tracker = PoseTracker(TrackOptions(high_score=0.3, low_score=0.1))
        js = work / "out.jsonl"
        start = time.perf_counter()
        stats = run_stream(rt, cap, detector=det, out=out, json_path=str(js), max_frames=frames, min_score=0.3,
                           tracker=tracker, detect_every=detect_every, pipelined=pipelined)
        total_s += time.perf_counter() - start
        out.close(keep=True)
        cap.release()
        total_n += stats["frames"]
        det_runs += stats["detector_runs"]
        lines = [json.loads(ln) for ln in js.read_text().splitlines()]
        per_video.append({"video": v, "ids": tracker.next_id - 1,
                          "max_people": max(len(ln["people"]) for ln in lines),
                          "long_ids": _long_tracks(lines, 10)})
        if keep is not None:
            keep.append(lines)
    return total_n, total_s, det_runs, per_video


def _long_tracks(lines, n: int) -> int:
    counts: dict[int, int] = {}
    for ln in lines:
        for p in ln["people"]:
            counts[p["track_id"]] = counts.get(p["track_id"], 0) + 1
    return sum(c >= n for c in counts.values())


def jitter(videos_lines: list[list[dict]], smooth_options=None) -> dict:
    """Mean frame-to-frame acceleration (px / frame²) of static joints, raw and One-Euro smoothed (applied to the same
    tracked keypoints). A joint sample is static when its 9-frame running median moves < 0.2 % of the person's box
    height per frame; the sample needs the joint confident (>= 0.3) in the frame before and after."""
    from edgepose.pipeline.smooth import PoseSmoother

    raw_acc, sm_acc, all_raw, all_sm = [], [], [], []
    for lines in videos_lines:
        smoother = PoseSmoother(smooth_options)
        series: dict[int, list] = {}
        for ln in lines:
            if not ln["people"]:
                continue
            kps = np.array([p["keypoints"] for p in ln["people"]], np.float32).reshape(len(ln["people"]), -1, 3)
            ids = np.array([p["track_id"] for p in ln["people"]])
            boxes = np.concatenate([kps[..., :2].min(1), kps[..., :2].max(1)], axis=1)
            sm = smoother(kps, boxes, ids, ln["t"])
            for i, tid in enumerate(ids.tolist()):
                series.setdefault(tid, []).append((ln["frame"], kps[i], sm[i], boxes[i, 3] - boxes[i, 1]))
        for track in series.values():
            _track_jitter(track, raw_acc, sm_acc, all_raw, all_sm)
    return {"static_samples": len(raw_acc), "raw": float(np.mean(raw_acc)), "smoothed": float(np.mean(sm_acc)),
            "all_raw": float(np.mean(all_raw)), "all_smoothed": float(np.mean(all_sm))}


def _track_jitter(track, raw_acc, sm_acc, all_raw, all_sm) -> None:
    frames = np.array([t[0] for t in track])
    raw = np.stack([t[1] for t in track])
    sm = np.stack([t[2] for t in track])
    height = np.array([t[3] for t in track])
    for i in range(4, len(track) - 4):
        if frames[i + 4] - frames[i - 4] != 8:
            continue  # not 9 consecutive frames
        ok = (raw[i - 1:i + 2, :, 2] >= 0.3).all(axis=0)
        med_prev = np.median(raw[i - 4:i + 4, :, :2], axis=0)
        med_next = np.median(raw[i - 3:i + 5, :, :2], axis=0)
        still = np.linalg.norm(med_next - med_prev, axis=1) < 0.002 * max(height[i], 1.0)
        a_raw = np.linalg.norm(raw[i + 1, :, :2] - 2 * raw[i, :, :2] + raw[i - 1, :, :2], axis=1)
        a_sm = np.linalg.norm(sm[i + 1, :, :2] - 2 * sm[i, :, :2] + sm[i - 1, :, :2], axis=1)
        all_raw.extend(a_raw[ok].tolist())
        all_sm.extend(a_sm[ok].tolist())
        raw_acc.extend(a_raw[ok & still].tolist())
        sm_acc.extend(a_sm[ok & still].tolist())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=100, help="frames per video (each has 100)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    import edgepose

    b = bundles(args.work)
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    rows, kept = [], []
    with edgepose.load(b["movenet-lightning"], threads=args.threads) as rt, \
            edgepose.load(b["movenet-multipose"], threads=args.threads) as det:
        for pipelined, every in ((False, 1), (True, 1), (False, 3), (True, 3)):
            keep = kept if (pipelined, every) == (False, 1) else None
            n, s, runs, per_video = run_mode(rt, det, pipelined=pipelined, detect_every=every, frames=args.frames,
                                             work=args.work, keep=keep)
            rows.append((pipelined, every, n, s, runs, per_video))
            print(f"{'pipelined ' if pipelined else 'sequential'} detect-every {every}: {n} frames in {s:.1f} s = "
                  f"{n / s:.1f} FPS, detector on {runs} frames; ids per video "
                  f"{[(p['video'][-9:-4], p['ids'], p['long_ids'], p['max_people']) for p in per_video]}",
                  flush=True)
    fps = {(p, e): n / s for p, e, n, s, _, _ in rows}
    print(f"pipelined / sequential: every frame {fps[True, 1] / fps[False, 1]:.2f}x, detect-every-3 "
          f"{fps[True, 3] / fps[False, 3]:.2f}x; detect-every-3 / every frame: sequential "
          f"{fps[False, 3] / fps[False, 1]:.2f}x, pipelined {fps[True, 3] / fps[True, 1]:.2f}x")
    print("jitter (mean |acceleration| px/frame², static joints; all confident joints):", json.dumps(jitter(kept)))


if __name__ == "__main__":
    main()
