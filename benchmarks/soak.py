"""Soak: 10,000 frames (the Pose2Sim multi-person videos, looped) through the `edgepose run --track --smooth` loop,
pipelined, writing the annotated video and JSON lines; resident memory sampled every 250 frames.

    .venv/bin/python benchmarks/soak.py --work /tmp/ep-soak [--frames 10000] [--bundle DIR]

Default bundle: the demo's bottom-up default centernet-mnv2s, ONNX fp32, exported into --work (small and fast, so
that 10,000 frames fit in minutes on 2 cores); the four videos are scaled to a quarter (272 x 480) once and looped.
Pass: RSS grows at most 5 MB from frame 1,000 (after warm-up) to the end, and the JSON lines hold every frame once
(and the video every frame); the exit code is 1 when either fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-video"
VIDEOS = [SHARED / f"pose2sim-multiperson-cam0{i}.mp4" for i in (1, 2, 3, 4)]
SIZE = (272, 480)  # a quarter of 1088 x 1920
MAX_GROWTH_MB = 5.0  # RSS growth allowed after warm-up


def small_loop(work: Path) -> Path:
    path = work / "loop.avi"
    if path.exists():
        return path
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, SIZE)
    for v in VIDEOS:
        cap = cv2.VideoCapture(str(v))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            w.write(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
        cap.release()
    w.release()
    return path


class Loop:
    """A video read over and over (rewound at its end), like a camera that never stops."""

    def __init__(self, path: Path):
        self.cap = cv2.VideoCapture(str(path))
        self.loops = 0

    def read(self):
        ok, frame = self.cap.read()
        if not ok:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self.loops += 1
            ok, frame = self.cap.read()
        return ok, frame


class Probe:
    """The progress hook: RSS every ``every`` frames."""

    def __init__(self, every: int = 250):
        from edgepose.pipeline.memory import rss_mb

        self.rss_mb, self.every, self.n, self.samples = rss_mb, every, 0, []

    def update(self):
        self.n += 1
        if self.n % self.every == 0:
            self.samples.append((self.n, self.rss_mb()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    import edgepose
    from edgepose.pipeline.smooth import PoseSmoother
    from edgepose.pipeline.track import PoseTracker, TrackOptions
    from edgepose.pipeline.video import VideoOutput, run_stream

    bundle = args.bundle
    if bundle is None:
        from edgepose.models import create

        bundle = args.work / "centernet-mnv2s"
        if not (bundle / "manifest.json").exists():
            edgepose.export(create("centernet-mnv2s", weights="default"), target="onnx", out=bundle, log=None)
    loop = Loop(small_loop(args.work))
    probe = Probe()
    js, out_path = args.work / "soak.jsonl", args.work / "soak.mp4"
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; bundle {bundle}", flush=True)
    start = time.perf_counter()
    with edgepose.load(bundle, threads=args.threads) as rt:
        tracker = PoseTracker(TrackOptions(high_score=float(rt.spec.score_threshold), low_score=0.1),
                              keypoints=rt.spec.keypoints)
        out = VideoOutput(out_path, 30.0, SIZE)
        stats = run_stream(rt, loop, out=out, json_path=str(js), max_frames=args.frames, tracker=tracker,
                           smoother=PoseSmoother(), pipelined=True, progress=probe)
        out.close(keep=True)
    wall = time.perf_counter() - start
    frames = [json.loads(ln)["frame"] for ln in js.open()]
    video_frames = int(cv2.VideoCapture(str(out_path)).get(cv2.CAP_PROP_FRAME_COUNT))
    rss = dict(probe.samples)
    warm = rss.get(1000, probe.samples[0][1])
    end = probe.samples[-1][1]
    print(f"{stats['frames']} frames ({loop.loops} loops of the video) in {wall:.0f} s = {stats['fps']:.1f} FPS; "
          f"{tracker.next_id - 1} tracks started, {len(tracker.tracks)} live at the end; JSON lines {len(frames)} "
          f"(frames 0..{frames[-1]} each once: {frames == list(range(stats['frames']))}); video frames {video_frames}")
    print(f"RSS MiB: at frame 1000 {warm:.1f}, at the end {end:.1f}, growth {end - warm:+.1f}, max "
          f"{max(r for _, r in probe.samples):.1f}; samples every 250 frames: "
          f"{[round(r, 1) for _, r in probe.samples]}")
    failed = []
    if end - warm > MAX_GROWTH_MB:
        failed.append(f"RSS grew {end - warm:+.1f} MiB after warm-up (allowed {MAX_GROWTH_MB:g})")
    if frames != list(range(stats["frames"])) or video_frames != stats["frames"]:
        failed.append(f"{len(frames)} JSON lines and {video_frames} video frames for {stats['frames']} frames "
                      "processed (expected each frame once)")
    print("FAIL: " + "; ".join(failed) if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
