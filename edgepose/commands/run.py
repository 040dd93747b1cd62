"""``edgepose run``: a bundle on a video, camera or stream (see :mod:`edgepose.pipeline.video`)."""

from __future__ import annotations

from edgepose.commands.base import command
from edgepose.errors import ConfigError
from edgepose.pipeline import START_SCORE
from edgepose.utils.options import check_threads

VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi")


def _run_args(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle made by `edgepose export` or `edgepose import`")
    p.add_argument("--source", required=True,
                   help="video file, camera index (0), rtsp://... / http://... stream, csi://N (Jetson CSI camera) or "
                        "picam://N (Raspberry Pi camera, needs picamera2)")
    p.add_argument("--detector", default=None, metavar="BUNDLE",
                   help="bottom-up bundle (e.g. centernet-mnv2s) that finds person boxes for a top-down BUNDLE; "
                        "without it a top-down model sees the whole frame as one person")
    p.add_argument("--out", default=None, help="annotated video to write (.mp4 or .avi; written when the run ends)")
    p.add_argument("--json", default=None, help="JSON lines file: one line per frame with the people found "
                                                "(written frame by frame to .NAME.partial beside it, renamed to NAME "
                                                "when the run ends)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: all)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads (default: the bundle's --device profile, else every core the backend "
                        "may use)")
    p.add_argument("--min-score", type=float, default=START_SCORE,
                   help="with --detector: keep the people it scores at least this (0..1; replaces the detector "
                        "bundle's own threshold); with --track, people it scores down to 0.1 continue a track")
    g = p.add_argument_group("video: tracking, smoothing, detector schedule, threads")
    g.add_argument("--track", action="store_true",
                   help="follow people across frames: a track id per person in the JSON lines, drawn with a trail")
    g.add_argument("--track-patience", type=int, default=30, metavar="FRAMES",
                   help="frames a lost person's id is kept waiting for them to come back (default 30)")
    g.add_argument("--smooth", action="store_true",
                   help="One-Euro filter on each tracked person's joints (needs --track)")
    g.add_argument("--smooth-cutoff", type=float, default=1.0, metavar="HZ",
                   help="One-Euro min cutoff: lower = steadier still joints, more lag (default 1.0 Hz)")
    g.add_argument("--smooth-beta", type=float, default=2.0, metavar="BETA",
                   help="One-Euro beta, per person height / s: higher = less lag on fast moves (default 2.0)")
    g.add_argument("--smooth-dcutoff", type=float, default=1.0, metavar="HZ",
                   help="One-Euro cutoff of the speed estimate (default 1.0 Hz)")
    g.add_argument("--detect-every", type=int, default=1, metavar="N",
                   help="run --detector every N frames and take the boxes from the tracks in between (needs "
                        "--track; the detector also runs when a track is lost; default 1: every frame)")
    g.add_argument("--sequential", action="store_true",
                   help="one thread: read, infer and write each frame in turn (default: three threads with bounded "
                        "queues; a camera or stream then drops the frames inference is too slow for, counted)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.epilog = ("Times are milliseconds per frame (median of the per-frame call: boxes, pose, tracking, smoothing); "
                "FPS = frames / second over the whole run, reading, drawing and writing frames included. Ctrl-C (or "
                "SIGTERM) stops a camera or stream: the video and JSON lines of the frames done so far are kept, as "
                "they are when a stream stops or a write fails (then the exit code is non-zero).")


def _check_args(args) -> None:
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames {args.max_frames}: expected at least 1")
    check_threads(args.threads, "--threads")
    if not 0.0 <= args.min_score <= 1.0:
        raise ConfigError(f"--min-score {args.min_score}: expected a score between 0 and 1")
    from edgepose.pipeline.stages import check_detect_every

    check_detect_every(args.detect_every, detector=bool(args.detector), tracker=args.track)
    if args.smooth and not args.track:
        raise ConfigError("--smooth needs --track (the filter follows each tracked person's joints)")
    for flag, v in (("--smooth-cutoff", args.smooth_cutoff), ("--smooth-dcutoff", args.smooth_dcutoff)):
        if not v > 0 or v == float("inf"):
            raise ConfigError(f"{flag} {v}: expected a frequency in Hz > 0")
    if not 0 <= args.smooth_beta < float("inf"):
        raise ConfigError(f"--smooth-beta {args.smooth_beta}: expected a number >= 0")
    if args.track_patience < 0:
        raise ConfigError(f"--track-patience {args.track_patience}: expected a number of frames >= 0")
    if args.track:
        from edgepose.utils.lazy import check_installed

        check_installed("scipy", "--track (the optimal assignment of people to tracks)")


def _trackers(args, spec):
    """(PoseTracker or None, PoseSmoother or None) from the options; option errors before any work. A person
    starts a track at the score the run reports people at (--min-score on detector boxes, else the bundle's own
    threshold); down to 0.1 they only continue one."""
    if not args.track:
        return None, None
    from edgepose.pipeline.smooth import PoseSmoother, SmoothOptions
    from edgepose.pipeline.track import PoseTracker, TrackOptions

    high = args.min_score if args.detector else (spec.score_threshold or 0.0) if spec.bottom_up else 0.0
    tracker = PoseTracker(TrackOptions(patience=args.track_patience, high_score=high, low_score=min(0.1, high)),
                          keypoints=spec.keypoints)
    if not args.smooth:
        return tracker, None
    return tracker, PoseSmoother(SmoothOptions(min_cutoff=args.smooth_cutoff, beta=args.smooth_beta,
                                               d_cutoff=args.smooth_dcutoff))


def _load_detector(args, rt, options):
    import edgepose

    if not args.detector:
        return None
    detector = edgepose.load(args.detector, **options)
    if not detector.spec.bottom_up or rt.spec.bottom_up:
        detector.close()
        if rt.spec.bottom_up:
            raise ConfigError(f"--detector given for {args.bundle}, a bottom-up (centernet) bundle that finds "
                              "people itself; expected --detector only with a top-down BUNDLE")
        raise ConfigError(f"--detector {args.detector} is a {detector.spec.kind!r} model; expected a bottom-up "
                          "(centernet) bundle that finds people")
    return detector


@command("run", "run a bundle on a video file, camera or stream: annotated video, JSON lines, FPS")(_run_args)
def run_run(args) -> int:
    import edgepose
    from edgepose.utils.fs import check_output_file

    _check_args(args)
    check_output_file(args.out, "--out", VIDEO_SUFFIXES)
    check_output_file(args.json, "--json")
    options = {"threads": args.threads} if args.threads else {}
    from edgepose.verify import warn_if_unverified

    for path in (args.bundle, args.detector):
        if path:
            warn_if_unverified(path)
    with edgepose.load(args.bundle, **options) as rt:
        tracker, smoother = _trackers(args, rt.spec)
        detector = _load_detector(args, rt, options)
        try:
            stats = _run(args, rt, detector, tracker, smoother)
        finally:
            if detector is not None:
                detector.close()
    _report(stats, tracker)
    return 0


def _run(args, rt, detector, tracker, smoother) -> dict:
    from edgepose.pipeline.sources import is_live, open_source
    from edgepose.pipeline.video import VideoOutput, run_stream
    from edgepose.utils.progress import Progress

    cap = out = None
    handed = False  # run_stream releases the capture, once no thread reads from it
    try:
        cap = open_source(args.source)
        if args.out:
            import cv2

            size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            out = VideoOutput(args.out, cap.get(cv2.CAP_PROP_FPS), size)
        bar = Progress(args.max_frames, "frames", enabled=not args.quiet)
        handed = True
        stats = run_stream(rt, cap, detector=detector, out=out, json_path=args.json, max_frames=args.max_frames,
                           min_score=args.min_score, progress=bar, tracker=tracker, smoother=smoother,
                           detect_every=args.detect_every, pipelined=not args.sequential,
                           live=is_live(args.source), name=f"--source {args.source}")
        bar.close()
    except BaseException:
        if out is not None:  # the frames written so far stay a valid video
            out.close(keep=out.frames > 0)
        raise
    finally:
        if cap is not None and not handed:
            cap.release()
    if out is not None:
        out.close(keep=True)
    return stats


def _report(stats: dict, tracker) -> None:
    ms = stats["ms"]
    if stats["stopped"]:
        print(f"stopped by {stats['stopped']} after {stats['frames']} frames; the outputs hold those frames")
    extra = f", {stats['dropped']} stale frames dropped" if stats["dropped"] else ""
    if tracker is not None:
        extra += f", {tracker.next_id - 1} tracks, detector on {stats['detector_runs']} frames"
    print(f"{stats['frames']} frames, {stats['people']} people, {stats['fps']:.1f} FPS{extra}; per frame (median "
          f"ms): detect {ms['detect']:.2f}, preprocess {ms['preprocess']:.2f}, inference {ms['inference']:.2f}, "
          f"decode {ms['decode']:.2f}, track {ms['track']:.2f}, total {ms['total']:.2f}")
