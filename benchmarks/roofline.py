"""What this CPU can do at best: its fp32 and INT8 matrix-multiply peaks against each model's work.

    .venv/bin/python benchmarks/roofline.py [--models movenet-lightning hrnet-w32] [--threads 2]
        [--bundle MODEL=PATH ...] [--rounds 5] [--runs 30] [--goal 12]

1. The host's peaks, measured at ``--threads``: fp32 (``torch.matmul``) and INT8 (``torch._int_mm``, int8 x int8
   into int32, oneDNN's VNNI / AMX kernels where the CPU has them) on 2048 x 2048 matrices, in GMAC/s (fastest
   of 10 calls).
2. Per model (registered, untrained weights: the work does not depend on the values): its multiply-accumulates at
   the default input (``edgepose.models.cost``) and PyTorch eager fp32's ``rt.infer`` time, batch 1.
3. The floor: the model's MACs at the INT8 peak, the fastest any INT8 kernel could run them on this host, and so
   the most any INT8 bundle can gain over eager here. ``--goal`` (12) gives the INT8 throughput a bundle would
   need to be that many times faster than eager, as a multiple of the measured INT8 peak: above 1 is beyond
   this CPU.
4. ``--bundle MODEL=PATH``: an exported bundle of that model, timed in the same interleaved rounds as eager (its
   ``rt.infer``: model plus in-graph decoder), with the share of the INT8 peak it reaches.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_infer_ms, machine, table, today  # noqa: E402

from edgepose.utils.timing import times_ms  # noqa: E402

GEMM_N = 2048


def gemm_peaks(threads: int, runs: int = 10) -> dict[str, float]:
    """fp32 and INT8 matrix-multiply throughput in GMAC/s: the fastest of ``runs`` calls after 3 warm-up calls (a
    peak is what the hardware can do; a shared host's load only ever slows a call down)."""
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (GEMM_N, GEMM_N), dtype=torch.int8, generator=gen)
    b = torch.randint(-128, 128, (GEMM_N, GEMM_N), dtype=torch.int8, generator=gen)
    af, bf = a.float(), b.float()
    macs = GEMM_N ** 3 / 1e9
    peaks = {"fp32": macs / min(times_ms(lambda: af @ bf, runs, 3)) * 1e3}
    try:
        peaks["int8"] = macs / min(times_ms(lambda: torch._int_mm(a, b), runs, 3)) * 1e3
    except (RuntimeError, AttributeError) as exc:  # a torch build without a CPU int8 GEMM
        sys.exit(f"error: torch._int_mm cannot multiply int8 matrices here ({exc}); no INT8 peak to compare with")
    return peaks


def _parse_bundles(items: list[str]) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        model, sep, path = item.partition("=")
        if not sep or not model or not path:
            sys.exit(f"error: --bundle takes MODEL=PATH (a registered model and its bundle folder); got {item!r}")
        out.append((model, Path(path)))
    return out


def measure(args) -> tuple[dict, list[list], list[list]]:
    import edgepose
    from edgepose.models import create
    from edgepose.models.cost import model_cost
    from edgepose.runtimes.torch import TorchRuntime

    bundles = _parse_bundles(args.bundle or [])
    unknown = sorted({m for m, _ in bundles} - set(args.models))
    if unknown:
        sys.exit(f"error: --bundle names {', '.join(unknown)}, not among --models {' '.join(args.models)}")
    peaks = gemm_peaks(args.threads)
    models = {name: create(name) for name in args.models}
    costs = {name: model_cost(m) for name, m in models.items()}
    rts = {name: TorchRuntime(m, threads=args.threads) for name, m in models.items()}
    rts |= {str(path): edgepose.load(path, threads=args.threads) for _, path in bundles}
    try:
        for rt in rts.values():
            rt.load()
        ms = interleaved_infer_ms(rts, args.rounds, args.runs, warmup=5)
    finally:
        for rt in rts.values():
            rt.close()
    model_rows = [_model_row(name, costs[name], ms[name], peaks, args.goal) for name in args.models]
    bundle_rows = [_bundle_row(model, path, costs[model].gmacs, ms[model], ms[str(path)], peaks, args.goal)
                   for model, path in bundles]
    return peaks, model_rows, bundle_rows


def _model_row(name: str, cost, eager: float, peaks: dict, goal: float) -> list:
    gmac = cost.gmacs
    floor = gmac / peaks["int8"] * 1e3
    need = gmac / (eager / goal) * 1e3  # GMAC/s an INT8 bundle needs to be `goal` times faster than eager
    return [name, f"{cost.input_size[0]}x{cost.input_size[1]}", f"{gmac:.3f}", f"{eager:.2f}",
            f"{gmac / eager * 1e3:.0f} ({gmac / eager * 1e3 / peaks['fp32']:.0%})", f"{floor:.2f}",
            f"{eager / floor:.1f}x", f"{need:.0f} ({need / peaks['int8']:.2f}x)"]


def _bundle_row(model: str, path: Path, gmac: float, eager: float, ms: float, peaks: dict, goal: float) -> list:
    reached = gmac / ms * 1e3
    return [model, str(path), f"{ms:.2f}", f"{eager / ms:.1f}x", f"{reached:.0f} ({reached / peaks['int8']:.0%})",
            f"{eager / goal:.2f}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["movenet-lightning", "hrnet-w32"], help="registered models")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for every measurement")
    p.add_argument("--bundle", nargs="+", metavar="MODEL=PATH", help="bundles to time beside eager")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (eager and bundles alternate)")
    p.add_argument("--runs", type=int, default=30, help="timed calls per model and round")
    p.add_argument("--goal", type=float, default=12.0, help="speed-up over eager to test against the peak")
    args = p.parse_args()
    if args.threads < 1 or args.rounds < 1 or args.runs < 1 or args.goal <= 0:
        sys.exit("error: --threads, --rounds and --runs must be at least 1 and --goal above 0; "
                 f"got {args.threads}, {args.rounds}, {args.runs}, {args.goal}")
    peaks, model_rows, bundle_rows = measure(args)
    print(f"# Roofline — {today()} — {machine()}\n")
    print(f"`.venv/bin/python benchmarks/roofline.py {' '.join(sys.argv[1:])}`\n")
    print(f"Peaks at {args.threads} threads ({GEMM_N}² matrix multiply, fastest of 10): fp32 {peaks['fp32']:.0f} "
          f"GMAC/s, INT8 {peaks['int8']:.0f} GMAC/s ({peaks['int8'] / peaks['fp32']:.1f}x fp32)\n")
    print(table(["model", "input", "GMAC", "eager fp32 ms", "eager GMAC/s (of fp32 peak)", "INT8 floor ms",
                 "best INT8 / eager", f"GMAC/s for {args.goal:g}x eager (of INT8 peak)"], model_rows))
    if bundle_rows:
        print()
        print(table(["model", "bundle", "infer ms", "vs eager", "GMAC/s (of INT8 peak)",
                     f"ms for {args.goal:g}x eager"], bundle_rows))

if __name__ == "__main__":
    main()
