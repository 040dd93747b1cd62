"""``edgepose run``: a bundle on a video, camera or stream (see :mod:`edgepose.pipeline.video`)."""

from __future__ import annotations

from edgepose.cli import command
from edgepose.errors import ConfigError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi")


def _run_args(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle made by `edgepose export` or `edgepose import`")
    p.add_argument("--source", required=True,
                   help="video file, camera index (0), rtsp://... / http://... stream, or csi://N (Jetson CSI camera)")
    p.add_argument("--detector", default=None, metavar="BUNDLE",
                   help="bottom-up bundle (e.g. centernet-mnv2s) that finds person boxes for a top-down BUNDLE; "
                        "without it a top-down model sees the whole frame as one person")
    p.add_argument("--out", default=None, help="annotated video to write (.mp4 or .avi; written when the run ends)")
    p.add_argument("--json", default=None, help="JSON lines file: one line per frame with the people found")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: all)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads (default: the bundle's --device profile, else every core the backend "
                        "may use)")
    p.add_argument("--min-score", type=float, default=0.3,
                   help="with --detector: keep the people it scores at least this (0..1; replaces the detector "
                        "bundle's own threshold)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.epilog = ("Times are milliseconds per frame (median of the per-frame call: detect + pose); FPS = frames / "
                "second over the whole run, reading, drawing and writing frames included. Ctrl-C (or SIGTERM) stops "
                "a camera or stream: the video and JSON lines of the frames done so far are kept.")


@command("run", "run a bundle on a video file, camera or stream: annotated video, JSON lines, FPS")(_run_args)
def run_run(args) -> int:
    import edgepose
    from edgepose.pipeline.video import VideoOutput, open_source, run_stream
    from edgepose.utils.fs import check_output_file
    from edgepose.utils.progress import Progress

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames {args.max_frames}: expected at least 1")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: expected at least 1")
    if not 0.0 <= args.min_score <= 1.0:
        raise ConfigError(f"--min-score {args.min_score}: expected a score between 0 and 1")
    check_output_file(args.out, "--out", VIDEO_SUFFIXES)
    check_output_file(args.json, "--json")
    options = {"threads": args.threads} if args.threads else {}
    with edgepose.load(args.bundle, **options) as rt:
        detector = edgepose.load(args.detector, **options) if args.detector else None
        if detector is not None and (detector.spec.kind != "centernet" or rt.spec.kind == "centernet"):
            detector.close()
            if rt.spec.kind == "centernet":
                raise ConfigError(f"--detector given for {args.bundle}, a bottom-up (centernet) bundle that finds "
                                  "people itself; expected --detector only with a top-down BUNDLE")
            raise ConfigError(f"--detector {args.detector} is a {detector.spec.kind!r} model; expected a bottom-up "
                              "(centernet) bundle that finds people")
        cap = out = None
        try:
            cap = open_source(args.source)
            if args.out:
                import cv2

                size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
                out = VideoOutput(args.out, cap.get(cv2.CAP_PROP_FPS), size)
            bar = Progress(args.max_frames, "frames", enabled=not args.quiet)
            stats = run_stream(rt, cap, detector=detector, out=out, json_path=args.json,
                               max_frames=args.max_frames, min_score=args.min_score, progress=bar)
            bar.close()
        except BaseException:
            if out is not None:
                out.close(keep=False)
            raise
        finally:
            if cap is not None:
                cap.release()
            if detector is not None:
                detector.close()
        if out is not None:
            out.close(keep=True)
    ms = stats["ms"]
    if stats["stopped"]:
        print(f"stopped by {stats['stopped']} after {stats['frames']} frames; the outputs hold those frames")
    print(f"{stats['frames']} frames, {stats['people']} people, {stats['fps']:.1f} FPS; per frame (median ms): "
          f"detect {ms['detect']:.2f}, preprocess {ms['preprocess']:.2f}, inference {ms['inference']:.2f}, "
          f"decode {ms['decode']:.2f}, total {ms['total']:.2f}")
    return 0
