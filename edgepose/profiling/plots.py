"""PNG plots for benchmark reports (matplotlib, ``report`` extra), rendered off-screen with the Agg canvas.

matplotlib is imported inside the functions only, and through ``Figure`` + ``FigureCanvasAgg`` rather than
pyplot, so rendering neither needs a display nor changes the caller's pyplot backend. Every function takes
the ``results`` list of an ``edgepose.bench`` document (see :mod:`edgepose.profiling.schema`) and returns PNG
bytes at :data:`DPI` with a fixed width (the height grows with the number of results, within bounds).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from edgepose.backends import target_names
from edgepose.utils.lazy import is_importable, require

DPI = 100
WIDTH_IN = 10.0
LOG_SPREAD = 20.0  # log x-axis when max/min latency exceeds this ratio
STAGE_COLOURS = {"preprocess": "#4c9be8", "inference": "#f28e2b", "decode": "#59a14f"}
TARGET_PALETTE = ("#1f77b4", "#9467bd", "#ff7f0e", "#2ca02c")  # the registered targets' colours, in order
TARGET_COLOURS = {**dict(zip(target_names(), TARGET_PALETTE)), "pytorch": "#d62728"}
EXTRA_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "int8": "^"}
INSTALL_HINT = "pip install 'edgepose[report]' for plots"


def is_available() -> bool:
    """True when matplotlib can be imported (the ``report`` extra)."""
    return is_importable("matplotlib")


def _figure(height_in: float):
    require("matplotlib", "benchmark plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _rows_height(n: int) -> float:
    return min(max(1.4 + 0.45 * n, 3.0), 14.0)


def labels(results: Sequence[dict]) -> list[str]:
    """One label per result: its name, plus a second line ``@ device`` when the results span several devices."""
    multi = len({r["device"] for r in results}) > 1
    return [f"{r['name']}\n@ {r['device']}" if multi else str(r["name"]) for r in results]


def _boxplot(ax, data: list, names: list[str]) -> None:
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    orient = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
    ax.boxplot(data, whis=(1, 99), widths=0.6, showmeans=True, patch_artist=True,
               boxprops={"facecolor": "#cfe2f3", "edgecolor": "#3d6f9e"},
               medianprops={"color": "#c0392b", "linewidth": 2},
               meanprops={"marker": "D", "markersize": 4, "markerfacecolor": "#333", "markeredgecolor": "#333"},
               flierprops={"marker": ".", "markersize": 3, "alpha": 0.5}, **orient)
    ax.set_yticks(range(1, len(names) + 1), names)


def latency_distribution_png(results: Sequence[dict]) -> bytes:
    """Horizontal box plot of ``samples_ms["total"]`` per result (whiskers at p1/p99; log x when spread > 20x)."""
    fig = _figure(_rows_height(len(results)))
    ax = fig.add_subplot()
    data = [[float(v) for v in r["samples_ms"]["total"]] or [float(r["stages"]["total"]["p50"])] for r in results]
    if not data:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _png(fig)
    _boxplot(ax, data, labels(results))
    ax.invert_yaxis()  # first result on top, as in the tables
    lo = min(min(d) for d in data)
    hi = max(max(d) for d in data)
    if lo > 0 and hi / lo > LOG_SPREAD:
        ax.set_xscale("log")
    ax.set_xlabel("total latency per run [ms]" + (" (log scale)" if ax.get_xscale() == "log" else ""))
    fig.suptitle("Latency distribution (box: p25-p75, red: median, diamond: mean, whiskers: p1-p99)", fontsize=10)
    ax.grid(axis="x", alpha=0.3, which="both")
    return _png(fig)


def stage_breakdown_png(results: Sequence[dict]) -> bytes:
    """Stacked horizontal bars of the p50 preprocess / inference / decode times per result."""
    fig = _figure(_rows_height(len(results)))
    ax = fig.add_subplot()
    names = labels(results)
    ys = list(range(len(results)))
    left = [0.0] * len(results)
    for stage, colour in STAGE_COLOURS.items():
        widths = [float(r["stages"][stage]["p50"]) for r in results]
        ax.barh(ys, widths, left=left, color=colour, label=stage, height=0.6)
        left = [a + b for a, b in zip(left, widths)]
    for y, r, x in zip(ys, results, left):
        ax.text(x, y, f"  {float(r['stages']['total']['p50']):.2f} ms total", va="center", fontsize=8)
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(left, default=1.0) * 1.3 or 1.0)
    ax.set_xlabel("p50 time per stage [ms]")
    fig.suptitle("Where the time goes (p50 per stage; the total p50 is measured, not the sum)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _target_colour(target: str, seen: dict[str, str]) -> str:
    if target not in seen:
        extra = [c for c in EXTRA_COLOURS if c not in seen.values()] or list(EXTRA_COLOURS)
        seen[target] = TARGET_COLOURS.get(target, extra[0])
    return seen[target]


def _legends(ax, colours: dict[str, str], precisions: list[str]) -> None:
    from matplotlib.lines import Line2D

    targets = [Line2D([], [], linestyle="", marker="o", color=c, label=t) for t, c in colours.items()]
    marks = [Line2D([], [], linestyle="", marker=PRECISION_MARKERS.get(p, "D"), color="#555", label=p)
             for p in precisions]
    first = ax.legend(handles=targets, title="target", loc="lower left", fontsize=8, title_fontsize=8)
    ax.add_artist(first)
    ax.legend(handles=marks, title="precision", loc="lower right", fontsize=8, title_fontsize=8)


def accuracy_vs_latency_png(results: Sequence[dict]) -> bytes:
    """Scatter of AP against total p50 latency: colour per target, marker per precision (results with AP only)."""
    scored = [r for r in results if r.get("accuracy") and r["accuracy"].get("AP") is not None]
    fig = _figure(5.0 if scored else 2.4)
    ax = fig.add_subplot()
    ax.set_xlabel("total latency p50 [ms]")
    ax.set_ylabel("AP")
    fig.suptitle("Accuracy vs latency (up and to the left is better)", fontsize=10)
    if not scored:
        ax.text(0.5, 0.5, "no result has an accuracy value\n(AP comes from a manifest gate or an eval run)",
                ha="center", va="center", transform=ax.transAxes, fontsize=11, color="#666")
        ax.set_xticks([])
        ax.set_yticks([])
        return _png(fig)
    colours: dict[str, str] = {}
    precisions: list[str] = []
    for r in scored:
        x, y = float(r["stages"]["total"]["p50"]), float(r["accuracy"]["AP"])
        colour = _target_colour(str(r["target"]), colours)
        if r["precision"] not in precisions:
            precisions.append(r["precision"])
        ax.scatter([x], [y], s=70, color=colour, marker=PRECISION_MARKERS.get(r["precision"], "D"),
                   edgecolors="black", linewidths=0.5, zorder=3)
        if len(scored) <= 12:
            ax.annotate(str(r["model"]), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ys = [float(r["accuracy"]["AP"]) for r in scored]
    pad = max(2.0, (max(ys) - min(ys)) * 0.4)
    ax.set_ylim(max(0.0, min(ys) - pad), min(100.0, max(ys) + pad))
    xs = [float(r["stages"]["total"]["p50"]) for r in scored]
    if max(xs) > 10 * max(min(xs), 1e-9):  # e.g. a PyTorch baseline beside INT8 bundles: log scale keeps both
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
        ax.set_xlabel("total latency p50 [ms, log scale]")
    else:
        ax.set_xlim(left=0, right=max(xs) * 1.25)
    ax.grid(alpha=0.3)
    _legends(ax, colours, precisions)
    return _png(fig)


PLOTS = {
    "latency": ("Latency distribution", latency_distribution_png),
    "stages": ("Stage breakdown (p50)", stage_breakdown_png),
    "accuracy": ("Accuracy vs latency", accuracy_vs_latency_png),
}


def render_all(results: Sequence[dict]) -> dict[str, tuple[str, bytes]]:
    """All report plots as ``{key: (title, png bytes)}``; raises BackendUnavailable without matplotlib."""
    return {key: (title, fn(results)) for key, (title, fn) in PLOTS.items()}
