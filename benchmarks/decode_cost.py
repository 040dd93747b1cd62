"""What the in-graph heatmap decode costs on ONNX Runtime, stage by stage and against model size.

    .venv/bin/python benchmarks/decode_cost.py [--threads 2] [--runs 2000] [--model-runs 200] [--rounds 5]
    .venv/bin/python benchmarks/decode_cost.py --alternatives [--runs 2000] [--model-runs 300] [--rounds 5]

Part 1 — the decoder alone, for the default top-down model's codec (24 x 32 maps, 17 keypoints, DARK
kernel 11) and the same codec with argmax: ``HeatmapDecode`` exported by itself (opset 17) and timed on one
heatmap tensor; then the same graph cut after each stage (argmax cell search, window gather and log,
padding and blur, Newton step) and timed again, so each row is the cumulative cost up to that stage. "session floor"
is one ReduceMax: what a ``run`` call costs with nothing to do.

Part 2 — inside models of three sizes: ``rt.infer`` of the ONNX bundle with the decode in the graph
(DARK, and the argmax codec) against the host-decode bundle of the same weights (raw heatmaps out).
Interleaved rounds; ratio = median of the per-round ratios (range in brackets). Models without default
weights use seeded random weights: the decode graph's cost does not depend on the values.

``--alternatives`` times the routes tried for a cheaper DARK decode instead: TopK for the first maximum, 1 vs
2 intra-op threads, ONNX Runtime's price of one trivial node and of the window's ``Log``, and, inside the
default model, the argmax decoder and a DARK whose window is only clamped (borders replicated, no
log-quadratic padding: a lower bound on any DARK with the same blur), each appended to the host-decode
model's graph.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, today  # noqa: E402

from edgepose.utils.timing import times_ms  # noqa: E402

DEFAULT = "simplebaseline-mnv2s-edge"
MODELS = [DEFAULT, "simplebaseline-mnv2-edge", "simplebaseline-r18"]
# (label, op type, occurrence): the graph is cut after that node; None = the whole graph
DARK_STAGES = [("argmax cell (row max, 2 small ArgMax)", "ArgMax", 2),
               ("+ window gathered, its log", "Log", 1),
               ("+ log-quadratic padding, blur, log of the ring", "Log", 2),
               ("+ Newton step, validity, output (whole decoder)", None, 0)]
ARGMAX_STAGES = [DARK_STAGES[0], ("+ neighbours, quarter offset, output (whole decoder)", None, 0)]


def _session(model_bytes: bytes, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def _decoder_onnx(method: str):
    import onnx
    import torch

    from edgepose.codecs import HeatmapCodec
    from edgepose.codecs.graph import HeatmapDecode

    codec = HeatmapCodec(input_size=(96, 128), heatmap_size=(24, 32), method=method)
    x = torch.rand(1, 17, 32, 24, generator=torch.Generator().manual_seed(0))
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(HeatmapDecode(codec).eval(), (x,), f, opset_version=17, dynamo=False,
                          input_names=["heatmaps"])
    return onnx.shape_inference.infer_shapes(onnx.load_from_string(f.getvalue())), x.numpy()


def _cut(model, op: str | None, nth: int):
    """The model truncated after the nth node of type ``op`` (its first output becomes the graph output)."""
    import onnx

    nodes = [n for n in model.graph.node if n.op_type != "Constant"]
    if op is None:
        return model, len(nodes)
    hits = [i for i, n in enumerate(nodes) if n.op_type == op]
    if len(hits) < nth:
        raise SystemExit(f"decode_cost: the decoder graph has {len(hits)} {op} nodes, the stage table expects "
                         f"{nth}; update DARK_STAGES to the decoder's current layout")
    last = nodes[hits[nth - 1]]
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    dropped = {id(n) for n in nodes[hits[nth - 1] + 1:]}
    kept = [n for n in model.graph.node if id(n) not in dropped]
    del cut.graph.node[:]
    cut.graph.node.extend(kept)
    info = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output)}
    del cut.graph.output[:]
    cut.graph.output.append(info[last.output[0]])
    return cut, hits[nth - 1] + 1


def _floor_model():
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceMax", ["heatmaps"], ["m"], keepdims=0)
    g = helper.make_graph([node], "floor", [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                                                          [1, 17, 32, 24])],
                          [helper.make_tensor_value_info("m", TensorProto.FLOAT, [])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def part1(args) -> list[list]:
    floor = _floor_model()
    rows = []
    for method, stages in (("dark", DARK_STAGES), ("argmax", ARGMAX_STAGES)):
        model, x = _decoder_onnx(method)
        sessions = {"session floor (one ReduceMax)": (_session(floor.SerializeToString(), args.threads), 1)}
        for label, op, nth in stages:
            cut, n_nodes = _cut(model, op, nth)
            sessions[label] = (_session(cut.SerializeToString(), args.threads), n_nodes)
        per = {k: [] for k in sessions}
        for _ in range(args.rounds):
            for k, (s, _) in sessions.items():
                t = times_ms(lambda s=s, x=x: s.run(None, {"heatmaps": x}), args.runs, 100)
                per[k].append(statistics.median(t))
        for k, (_, n) in sessions.items():
            rows.append([method, k, n, f"{statistics.median(per[k]) * 1000:.1f}"])
    return rows


def _topk_model():
    """The first maximum and its flat index of each map in one TopK(k=1): the alternative to two small ArgMax."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, 17, 32 * 24], np.int64), "shape")
    k = numpy_helper.from_array(np.array([1], np.int64), "k")
    nodes = [helper.make_node("Reshape", ["heatmaps", "shape"], ["flat"]),
             helper.make_node("TopK", ["flat", "k"], ["v", "i"], axis=2)]
    g = helper.make_graph(nodes, "topk", [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                                                        [1, 17, 32, 24])],
                          [helper.make_tensor_value_info("v", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("i", TensorProto.INT64, None)], [shape, k])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _chain_model(op: str, nodes: int, shape: list[int]):
    """``nodes`` element-wise ``op`` nodes in a row on a float tensor of ``shape`` (Add adds a scalar)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    names = ["heatmaps"] + [f"t{i}" for i in range(nodes)]
    graph = [helper.make_node(op, [a, "one"] if op == "Add" else [a], [b]) for a, b in zip(names, names[1:])]
    g = helper.make_graph(graph, "chain", [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, shape)], [one])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def node_prices(args) -> list[list]:
    """µs per node of a 41-node chain over a 1-node one: trivial Add on (17, 2), Log on the 17 windows."""
    rows = []
    for label, op, shape in (("one trivial node (Add on 17 x 2 values)", "Add", [17, 2]),
                             ("one Log of the 17 13 x 13 windows", "Log", [17, 169])):
        x = np.random.default_rng(0).uniform(0.01, 1.0, shape).astype(np.float32)
        one, many = (_session(_chain_model(op, n, shape).SerializeToString(), 2) for n in (1, 41))
        per = {1: [], 41: []}
        for _ in range(args.rounds):
            for n, s in ((1, one), (41, many)):
                per[n].append(statistics.median(times_ms(lambda s=s, x=x: s.run(None, {"heatmaps": x}), args.runs,
                                                         100)))
        rows.append([label, f"{(statistics.median(per[41]) - statistics.median(per[1])) * 1000 / 40:.2f}"])
    return rows


def _replicate_decoder(codec):
    """``HeatmapDecode`` whose window is only clamped to the map (no log-quadratic padding): a bound, not a codec."""
    from edgepose.codecs.graph import HeatmapDecode

    class Replicate(HeatmapDecode):
        def _padded_window(self, flat, x, y):
            import torch

            return torch.gather(flat, 2, self.index_y[y] + self.index_x[x])

    return Replicate(codec)


def in_model(args) -> list[list]:
    """The default model's host-decode graph, alone and with each decoder appended (onnx.compose)."""
    import io

    import onnx
    import torch
    from onnx import compose

    import edgepose
    from edgepose.codecs import HeatmapCodec
    from edgepose.codecs.graph import HeatmapDecode
    from edgepose.models import create

    model = create(DEFAULT, weights="default")
    with tempfile.TemporaryDirectory() as tmp:
        host = onnx.load(str(edgepose.export(model, target="onnx", out=Path(tmp) / "h", decode="host",
                                                log=None).path / "model.onnx"))
    out = host.graph.output[0]
    k, h, w = (d.dim_value for d in out.type.tensor_type.shape.dim[1:])
    (wi, hi), maps = model.edgepose_meta.input_size, torch.rand(1, k, h, w, generator=torch.Generator().manual_seed(0))
    graphs = {"host-decode model (raw heatmaps out)": host}
    for label, method, make in (("+ argmax decoder", "argmax", HeatmapDecode), ("+ DARK decoder (exact)", "dark",
                                HeatmapDecode), ("+ DARK, window clamped (no padding)", "dark", _replicate_decoder)):
        f = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decoder = make(HeatmapCodec(input_size=(wi, hi), heatmap_size=(w, h), method=method)).eval()
            torch.onnx.export(decoder, (maps,), f, opset_version=17, dynamo=False, input_names=["heatmaps"],
                              output_names=["keypoints"])
        dec = compose.add_prefix(onnx.load_from_string(f.getvalue()), "dec_")
        graphs[label] = compose.merge_models(host, dec, io_map=[(out.name, "dec_heatmaps")])
    sessions = {k2: _session(g.SerializeToString(), args.threads) for k2, g in graphs.items()}
    x = np.random.default_rng(0).standard_normal((1, 3, hi, wi)).astype(np.float32)
    name = host.graph.input[0].name
    per = {k2: [] for k2 in sessions}
    for _ in range(args.rounds):
        for k2, s in sessions.items():
            t = times_ms(lambda s=s: s.run(None, {name: x}), args.model_runs, 20)
            per[k2].append(statistics.median(t))
    base = list(per)[0]
    return [[k2, f"{statistics.median(v):.3f}", f"{(statistics.median(v) - statistics.median(per[base])) * 1000:+.1f}",
             _range([a / b for a, b in zip(v, per[base])])] for k2, v in per.items()]


COCO_MINI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco-mini" / "test_coco.json"


def _edge_counts(annotations, within: int) -> tuple[int, int, int, int]:
    """(joints, joints within ``within`` cells of a map edge, people, people with one) on the default model's
    24 x 32 maps (ground-truth boxes, the runtime's crop)."""
    from edgepose.data.transforms import box_to_center_scale, get_affine_matrix

    (wi, hi), (wh, hh) = (96, 128), (24, 32)
    joints = near = people = people_near = 0
    for a in annotations:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        if a.get("category_id", 1) != 1 or not (kp[:, 2] > 0).any():
            continue
        x, y, w, h = a["bbox"]
        m = get_affine_matrix(*box_to_center_scale(np.array([x, y, x + w, y + h]), wi / hi, padding=1.25), (wi, hi))
        cell = np.round((m @ np.c_[kp[:, :2], np.ones(len(kp))].T).T * wh / wi)[kp[:, 2] > 0]
        hit = (cell.min(axis=1) < within) | (cell[:, 0] > wh - 1 - within) | (cell[:, 1] > hh - 1 - within)
        joints, near = joints + len(hit), near + int(hit.sum())
        people, people_near = people + 1, people_near + int(hit.any())
    return joints, near, people, people_near


def edge_share() -> str:
    """Labelled joints where the 13 x 13 window crosses a map edge (within 6 cells) and where a clamped window
    errs most (within 3 cells), in the coco-mini photos and synthetic-val:300."""
    import json

    from edgepose.data.sources import resolve_dataset

    sets = {"synthetic-val:300": resolve_dataset("synthetic-val:300", "single", progress=False).to_coco_dict()}
    if COCO_MINI.is_file():
        sets["coco-mini"] = json.loads(COCO_MINI.read_text())
    out = []
    for name, data in sets.items():
        for within in (6, 3):
            j, n, p, pn = _edge_counts(data["annotations"], within)
            out.append(f"{name}, within {within} cells: {n} of {j} joints ({n / j:.1%}), {pn} of {p} people")
    return "labelled joints near a map edge (ground-truth boxes): " + "; ".join(out)


def _clamped_step(t, flat, x, y) -> np.ndarray:
    """``DarkWindow.step`` without the log-quadratic padding (window clamped to the map), validity rules kept."""
    from edgepose.codecs.dark import ANISOTROPY, LOG_FLOOR, MAX_STEP

    idx = t.index_y[y] + t.index_x[x] + (np.arange(len(x)) * flat.shape[1])[:, None]
    ring = np.log(np.maximum(np.maximum(np.take(flat, idx).astype(np.float64), LOG_FLOOR) @ t.blur, LOG_FLOOR))
    gx, gy, hxx, hyy, hxy = (ring @ t.deriv).T
    det = hxx * hyy - hxy * hxy
    ok = (det > 1e-12) & (det > ANISOTROPY * (hxx * hxx + hyy * hyy)) & (hxx < 0)
    safe = np.where(ok, det, 1.0)
    step = np.stack([-(hyy * gx - hxy * gy) / safe, -(hxx * gy - hxy * gx) / safe], axis=1)
    return np.where((ok & (np.abs(step) <= MAX_STEP).all(axis=1))[:, None], step, 0.0)


def border_bias() -> str:
    """Largest x error (map px) decoding a sigma-2 Gaussian centred 0..6 cells from the left edge of a 24 x 32 map
    (steps of 0.05 px), exact DARK (as shipped) vs the clamped window."""
    from edgepose.codecs.dark import dark_window
    from edgepose.codecs.heatmap import argmax_2d

    t, cols, rows = dark_window(24, 32, 11), np.arange(24), np.arange(32)
    centres = np.arange(0.0, 6.0001, 0.05)
    maps = np.exp(-((cols[None, None] - centres[:, None, None]) ** 2 + (rows[None, :, None] - 16.3) ** 2) / 8.0)
    x, y, score = argmax_2d(maps.astype(np.float32))
    flat = maps.astype(np.float32).reshape(len(centres), -1)
    exact = np.abs(x + t.step(flat, x, y, score)[:, 0] - centres).max()
    clamped = np.abs(x + _clamped_step(t, flat, x, y)[:, 0] - centres)
    return (f"largest x error of a Gaussian (sigma 2) centred 0–6 cells from a map edge: exact DARK {exact:.3f} "
            f"map px, clamped window {clamped.max():.3f} (at {centres[clamped.argmax()]:.2f} cells; "
            f"{clamped[centres >= 4].max():.3f} from 4 cells on)")


def border_ap(data: str = "synthetic-val:300") -> str:
    """OKS AP of the default model (PyTorch, host decode) on ``data`` with exact DARK, the clamped window and argmax."""
    from edgepose.codecs import dark
    from edgepose.data.sources import resolve_dataset
    from edgepose.eval.evaluate import evaluate
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    exact, out = dark.DarkWindow.step, []
    for label, step, method in (("exact DARK", exact, "dark"), ("clamped window", None, "dark"),
                                ("argmax", exact, "argmax")):
        dark.DarkWindow.step = step or (lambda t, flat, x, y, score: _clamped_step(t, flat, x, y).astype(np.float32))
        try:
            with TorchRuntime(create(DEFAULT, weights="default", decode=method).eval(), threads=2) as rt:
                ap = evaluate(rt, resolve_dataset(data, "single", split="train", progress=False), progress=False)
        finally:
            dark.DarkWindow.step = exact
        out.append(f"{label} {ap['AP']:.4f} (AP75 {ap['AP75']:.4f})")
    return f"OKS AP on {data} (PyTorch, host decode): " + ", ".join(out)


def _range(r: list[float]) -> str:
    return f"{statistics.median(r):.3f} ({min(r):.3f}–{max(r):.3f})"


def alternatives(args) -> list[list]:
    """Routes tried for a cheaper DARK decode, graphs alone: TopK for the first maximum; the decoder on 1 intra-op
    thread. (``--alternatives`` adds :func:`node_prices`, :func:`in_model`, :func:`edge_share`,
    :func:`border_bias` and :func:`border_ap`.)"""
    model, x = _decoder_onnx("dark")
    argmax_cut, _ = _cut(model, *DARK_STAGES[0][1:])
    sessions = {"session floor (one ReduceMax), 2 threads": _session(_floor_model().SerializeToString(), 2),
                "first maximum: TopK(k=1) on the flattened maps": _session(_topk_model().SerializeToString(), 2),
                "first maximum: row max + two small ArgMax (the decoder's)": _session(argmax_cut.SerializeToString(),
                                                                                      2),
                "whole DARK decoder, 1 intra-op thread": _session(model.SerializeToString(), 1),
                "whole DARK decoder, 2 intra-op threads": _session(model.SerializeToString(), 2)}
    per = {k: [] for k in sessions}
    for _ in range(args.rounds):
        for k, s in sessions.items():
            per[k].append(statistics.median(times_ms(lambda s=s: s.run(None, {"heatmaps": x}), args.runs, 100)))
    return [[k, f"{statistics.median(v) * 1000:.1f}"] for k, v in per.items()]


def _bundles(name: str, tmp: Path, threads: int):
    import torch

    import edgepose
    from edgepose.models import create

    out = {}
    for label, decode, method in (("host", "host", None), ("dark", "graph", None), ("argmax", "graph", "argmax")):
        torch.manual_seed(0)
        kw = {"weights": "default"} if name == DEFAULT else {}
        model = create(name, **kw, **({"decode": method} if method else {}))
        b = edgepose.export(model, target="onnx", out=tmp / f"{name}-{label}", decode=decode, log=None).path
        out[label] = edgepose.load(b, threads=threads)
    return out


def part2(args) -> list[list]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rts = _bundles(name, Path(tmp), args.threads)
            w, h = rts["host"].spec.input.size
            x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
            runs = args.model_runs if name == DEFAULT else max(20, args.model_runs // 10)
            per = {k: [] for k in rts}
            for _ in range(args.rounds):
                for k, rt in rts.items():
                    per[k].append(statistics.median(times_ms(lambda rt=rt, x=x: rt.infer(x), runs, warmup=10)))
            host = statistics.median(per["host"])
            for k in ("dark", "argmax"):
                r = [a / b for a, b in zip(per[k], per["host"])]
                added = (statistics.median(per[k]) - host) * 1000
                rows.append([name, f"{w}x{h}", k, f"{host:.3f}", f"{added:+.1f}",
                             f"{statistics.median(r):.3f} ({min(r):.3f}–{max(r):.3f})"])
            for rt in rts.values():
                rt.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2000, help="timed calls per decoder-alone graph and round")
    ap.add_argument("--model-runs", type=int, default=200,
                    help="timed infer calls per bundle and round for the default model (a tenth for the others)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--alternatives", action="store_true",
                    help="time only the routes tried for a cheaper DARK decode (TopK, threads, node prices, "
                         "decoders inside the default model)")
    args = ap.parse_args()
    if args.alternatives:
        print(f"# DARK decode alternatives — {today()} — {machine()}\n\n`.venv/bin/python benchmarks/decode_cost.py "
              f"--alternatives --runs {args.runs} --model-runs {args.model_runs} --rounds {args.rounds}` — median "
              "µs per run call\n")
        print(table(["graph", "µs"], alternatives(args)))
        print("\nONNX Runtime's price per node (µs, 2 threads):\n")
        print(table(["node", "µs per node"], node_prices(args)))
        print(f"\nInside the default model ({DEFAULT}, ONNX Runtime, {args.threads} threads, batch 1; decoders "
              f"appended to the host-decode graph; median of {args.model_runs} runs per round):\n")
        print(table(["graph", "median ms", "added µs", "ratio (rounds)"], in_model(args)))
        print(f"\n{edge_share()}.\n\n{border_bias()}.")
        print(f"\n{border_ap()}")
        return
    p1, p2 = part1(args), part2(args)
    print(f"# In-graph heatmap decode cost — {today()} — {machine()}")
    print(f"\n`.venv/bin/python benchmarks/decode_cost.py --threads {args.threads} --runs {args.runs} "
          f"--model-runs {args.model_runs} --rounds {args.rounds}`\n")
    print("Decoder alone (24x32 maps, 17 keypoints), cumulative median µs per run call:\n")
    print(table(["codec", "graph up to", "nodes", "µs"], p1))
    print("\nInside models (ONNX Runtime bundles, batch 1), decode in graph vs host-decode bundle:\n")
    print(table(["model", "input", "decode", "host-decode infer ms", "added µs", "ratio"], p2))


if __name__ == "__main__":
    main()
