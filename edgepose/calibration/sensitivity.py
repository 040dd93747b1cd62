"""Sensitivity-driven mixed precision: find the layers INT8 hurts most and keep them in float.

Generic over targets: everything goes through two callbacks, so any target whose ``build`` honours
``ctx.exclude`` (ONNX Runtime ``nodes_to_exclude``, OpenVINO NNCF ignored scope, ...) works.

1. ``outputs(exclude)`` builds the INT8 model keeping ``exclude`` in float and returns its raw outputs on a
   small calibration subset. Each layer is scored by how much keeping *only it* in float (all others INT8)
   lowers the output error against the fp32 reference ("all but one"). This measures exactly what the
   search below buys, including the effect of errors accumulating downstream. Above ``2 * group`` layers
   the ranking is two-level to save builds: contiguous groups of layers are scored first (all but one
   group), then one by one the layers of the most harmful groups (at most ``refine``; only groups whose
   gain is at least a quarter of the best group's); the other layers follow in the order of their group's
   score. The output error is relative per channel (per keypoint heatmap), so
   one large channel cannot hide the others.
2. ``gate(exclude)`` builds the model and runs the accuracy gate. Layers are kept in float in ranked order,
   in growing steps (1, 2, 3, 4, 6, 8, 12, ...), until the gate passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgepose.errors import AccuracyGateFailed


def _channel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over channels (axis 1; the whole array when 1-D) of ||a_c - b_c|| / ||a_c||."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim < 2:
        a, b = a.reshape(1, 1, -1), b.reshape(1, 1, -1)
    axes = tuple(i for i in range(a.ndim) if i != 1)
    num = np.sqrt(((a - b) ** 2).sum(axis=axes))
    den = np.maximum(np.sqrt((a ** 2).sum(axis=axes)), 1e-6)
    return float(np.mean(num / den))


def output_error(reference: Sequence[Sequence[np.ndarray]], outputs: Sequence[Sequence[np.ndarray]]) -> float:
    """Mean over samples and float outputs of the per-channel relative L2 error (see :func:`_channel_error`)."""
    errs = [_channel_error(a, b) for ref_outs, outs in zip(reference, outputs) for a, b in zip(ref_outs, outs)
            if np.issubdtype(np.asarray(a).dtype, np.floating) and np.asarray(a).size
            and np.asarray(a).shape == np.asarray(b).shape]
    return float(np.mean(errs)) if errs else 0.0


@dataclass
class LayerScore:
    name: str
    error: float  # output error with this layer alone in float (nan: only its group was measured)
    gain: float  # error with everything INT8 minus ``error``: how much keeping it in float helps


@dataclass
class MixedResult:
    exclude: tuple[str, ...]
    report: object  # GateReport of the final model
    ranking: list[LayerScore] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    base_error: float = 0.0

    def to_dict(self, top: int = 10) -> dict:
        return {"kept_float": list(self.exclude), "base_output_error": round(self.base_error, 6),
                "ranking_top": [dict(name=s.name, gain=round(s.gain, 6)) for s in self.ranking[:top]],
                "steps": self.steps}


def rank_layers(layers: Sequence[str], outputs: Callable[[tuple[str, ...]], list], reference: list,
                *, group: int = 8, refine: int = 3, log=None) -> tuple[float, list[LayerScore]]:
    """(error with everything INT8, layers sorted by gain, largest first; ties keep graph order)."""
    base = output_error(reference, outputs(()))
    layers = list(layers)

    def score(names: Sequence[str]) -> float:
        return base - output_error(reference, outputs(tuple(names)))

    if len(layers) <= 2 * group:
        gains = {n: score([n]) for n in layers}
        return base, _sorted(layers, gains, base)
    groups = [layers[i:i + group] for i in range(0, len(layers), group)]
    group_gain = [score(g) for g in groups]
    if log:
        log(f"sensitivity: {len(groups)} groups of {group} layers scored")
    order = sorted(range(len(groups)), key=lambda i: (-group_gain[i], i))
    best = [i for i in order[:refine] if group_gain[i] >= 0.25 * group_gain[order[0]]] or order[:1]
    gains = {n: score([n]) for i in best for n in groups[i]}
    refined = _sorted([n for i in sorted(best) for n in groups[i]], gains, base)
    rest = [LayerScore(n, float("nan"), group_gain[i]) for i in sorted(range(len(groups)), key=lambda i: -group_gain[i])
            if i not in best for n in groups[i]]
    return base, refined + rest


def _sorted(names: list[str], gains: dict, base: float) -> list[LayerScore]:
    order = sorted(range(len(names)), key=lambda i: (-gains[names[i]], i))
    return [LayerScore(names[i], base - gains[names[i]], gains[names[i]]) for i in order]


def schedule(n: int) -> list[int]:
    """How many of the ranked layers to keep in float at each step: 1, 2, 3, 4, 6, 8, 12, 16, ... n."""
    out, k = [], 1
    while k < n:
        out.append(k)
        k = k + 1 if k < 4 else k + k // 2
    return [*out, n] if n else []


def search(layers: Sequence[str], *, outputs: Callable, reference: list, gate: Callable, first=None,
           max_layers: int | None = None, log=None) -> MixedResult:
    """Keep the most harmful layers in float, step by step, until ``gate(exclude).passed``.

    ``first``: the GateReport of the all-INT8 model when already measured. Raises AccuracyGateFailed when
    even ``max_layers`` (default: all) float layers do not pass.
    """
    log = log or (lambda *_: None)
    log(f"sensitivity: ranking {len(layers)} layers by their effect on the output")
    base, ranking = rank_layers(layers, outputs, reference, log=log)
    log("sensitivity: most harmful — " + ", ".join(f"{s.name} ({s.gain:+.4f})" for s in ranking[:5]))
    steps = [] if first is None else [_step((), first)]
    report = first
    limit = min(len(ranking), max_layers or len(ranking))
    for k in schedule(limit):
        exclude = tuple(s.name for s in ranking[:k])
        report = gate(exclude)
        steps.append(_step(exclude, report))
        log(f"sensitivity: {k} layer(s) in float → {report.summary()}")
        if report.passed:
            return MixedResult(exclude, report, ranking, steps, base)
    summary = report.summary() if report is not None else "no layer to keep in float"
    raise AccuracyGateFailed(f"accuracy gate failed even with {limit} layer(s) kept in float: {summary}")


def _step(exclude: tuple[str, ...], report) -> dict:
    return {"float_layers": len(exclude), "ap": report.ap, "ap_drop": round(report.ap_drop, 3),
            "latency_ms": report.latency_ms, "passed": report.passed}
