"""``edgepose bench``: per-stage latency of bundles (and their PyTorch source), with reports."""

from __future__ import annotations

import sys

from edgepose.backends import backend_names
from edgepose.commands.base import command
from edgepose.errors import EdgeposeError


def _bench_args(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="BUNDLE",
                   help="bundle directories to time (with --merge: bench.json files from earlier runs)")
    p.add_argument("--threads", default=None, metavar="N[,N...]",
                   help="inference thread counts to time, e.g. 1,2,4 (default: the --device profile's, else every "
                        "core this process may use)")
    p.add_argument("--runs", type=int, default=100, help="timed runs per bundle and thread count")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs before timing")
    p.add_argument("--batch", type=int, default=1,
                   help="person crops per frame for top-down models (one batched inference); bottom-up: 1")
    p.add_argument("--image", default=None,
                   help="photo to run on (default: a generated 640x480 frame, the same every run)")
    p.add_argument("--baseline", default=None, choices=("torch",),
                   help="also time the PyTorch eager fp32 model each bundle was exported from")
    p.add_argument("--baseline-weights", default=None, metavar="CKPT",
                   help="checkpoint of that model (default: the embedded default weights)")
    p.add_argument("--backend", default=None, choices=backend_names(),
                   help="run the bundles on this backend instead of the manifest's (e.g. a TensorRT bundle's ONNX on "
                        "onnxruntime)")
    p.add_argument("--device", default=None, metavar="PROFILE",
                   help="device profile (see `edgepose devices`) or auto (this machine): its thread count is the "
                        "default")
    p.add_argument("--report", default="bench-report", metavar="DIR",
                   help="folder for bench.json, bench.md and bench.html")
    p.add_argument("--merge", action="store_true",
                   help="merge bench.json files (e.g. from different devices) into one comparison report")
    p.add_argument("--no-isolate", action="store_true",
                   help="time every bundle in this process (faster start; peak RSS then covers them all)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.epilog = ("All times are wall-clock milliseconds per frame (p50/p90/p99 over --runs); FPS = 1000 / mean "
                "total; peak RSS in MiB; model size in MiB.")


def _threads(args) -> list[int]:
    from edgepose.profiling.runner import parse_threads

    prof = None
    if args.device:
        from edgepose.devices import profile_for

        prof = profile_for(args.device)  # an unknown profile is an error even when --threads is given
    if args.threads is not None:
        return parse_threads(args.threads)
    if prof is not None and prof.threads:
        return [prof.threads]
    from edgepose.utils.cores import usable_cores

    return [usable_cores()]


@command("bench", "time bundles stage by stage (p50/p90/p99, FPS, RSS) and write JSON/Markdown/HTML reports")(
    _bench_args)
def run_bench_cmd(args) -> int:
    from edgepose.profiling.report import load_report, merge, write_reports
    from edgepose.profiling.runner import plan_jobs, run_bench, summary_table

    command_line = "edgepose " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "edgepose bench"
    if args.merge:
        doc = merge([load_report(p) for p in args.inputs])
    else:
        from edgepose.verify import warn_if_unverified

        for path in dict.fromkeys(args.inputs):
            warn_if_unverified(path, args.backend)
        jobs = plan_jobs(args.inputs, threads=_threads(args), runs=args.runs, warmup=args.warmup,
                         batch=args.batch, image=args.image, baseline=args.baseline,
                         baseline_weights=args.baseline_weights, backend=args.backend)
        doc = run_bench(jobs, isolate=not args.no_isolate, progress=not args.quiet, command=command_line)
        if not doc["results"]:  # keep an earlier report in --report rather than replace it with nothing
            failures = doc.get("failures") or []
            for f in failures[1:]:
                print(f"also failed: {f['error']}", file=sys.stderr)
            raise EdgeposeError(f"every bench run failed ({len(failures)}); no report written: "
                                f"{failures[0]['error'] if failures else 'no jobs'}")
    paths = write_reports(doc, args.report)
    print(summary_table(doc))
    print("reports: " + ", ".join(str(p) for p in paths.values()))
    failures = doc.get("failures") or []
    for f in failures[1:]:
        print(f"also failed: {f['error']}", file=sys.stderr)
    if failures:
        raise EdgeposeError(f"{len(failures)} of {len(failures) + len(doc['results'])} bench runs failed (the "
                            f"reports hold the others): {failures[0]['error']}")
    return 0
