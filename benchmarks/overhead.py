"""What the edgepose runtime adds on top of the bare backend, on the default top-down bundle (ONNX Runtime).

    .venv/bin/python benchmarks/overhead.py [--threads 2] [--runs 300] [--rounds 5]

Three per-frame paths on the same frame and person box (a generated 640x480 frame):

* **edgepose**: ``rt(frame, boxes)`` — input checks, affine crop, normalisation, inference, decode, mapping
  the keypoints back to the frame, a ``Poses`` result;
* **bare**: ``cv2.warpAffine`` of the same crop (matrix computed once, outside the loop) + the ImageNet
  normalisation and NCHW transpose the model needs (one numpy expression) + ``InferenceSession.run`` on the
  bundle's own ``model.onnx`` with the same session options — no checks, no mapping back;
* **bare, no normalisation**: ``warpAffine`` + ``run`` on a tensor normalised once beforehand (the
  literal "warpAffine + run" floor; a real program has to normalise somewhere).

It also compares inference alone (``rt.infer``) of the same model with the decode in the graph (DARK, and
the plain argmax + quarter offset) and without it (host decode), to price the in-graph decode. Paths are
timed in interleaved rounds (this machine is shared and noisy); the medians over all rounds are compared,
with the spread of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, today  # noqa: E402

from edgepose.utils.timing import times_ms  # noqa: E402

MODEL = "simplebaseline-mnv2s-edge"


def _export(out: Path, decode: str, method: str | None = None) -> Path:
    """The default model's ONNX bundle; ``method`` overrides its heatmap codec (e.g. 'argmax')."""
    import edgepose
    from edgepose.models import create

    model = create(MODEL, weights="default", **({"decode": method} if method else {}))
    return edgepose.export(model, target="onnx", out=out, decode=decode, log=None).path


def _bare(bundle: Path, frame: np.ndarray, box: np.ndarray, spec, threads: int):
    import cv2
    import onnxruntime as ort

    from edgepose.data.transforms import box_to_center_scale, get_affine_matrix

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(bundle / "model.onnx"), so, providers=["CPUExecutionProvider"])
    w, h = spec.input.size
    center, scale = box_to_center_scale(box, w / h, padding=spec.input.padding)
    m = get_affine_matrix(center, scale, (w, h))
    mean = (np.array(spec.input.mean, np.float32) * 255)[::-1]  # BGR order, 0..255
    inv_std = (1.0 / (np.array(spec.input.std, np.float32) * 255))[::-1]
    name = sess.get_inputs()[0].name

    def tensor(crop):
        return np.ascontiguousarray(((crop - mean) * inv_std)[..., ::-1].transpose(2, 0, 1)[None], np.float32)

    fixed = tensor(cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR))

    def full():
        crop = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR)
        return sess.run(None, {name: tensor(crop)})

    def literal():
        cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR)
        return sess.run(None, {name: fixed})

    return full, literal


def main() -> None:
    import edgepose
    from edgepose.profiling.bench import bench_frame

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=300, help="timed calls per path and round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        graph_b, host_b = _export(Path(tmp) / "graph", "graph"), _export(Path(tmp) / "host", "host")
        auto_b = _export(Path(tmp) / "auto", "auto")
        argmax_b = _export(Path(tmp) / "argmax", "graph", method="argmax")  # same weights, argmax + quarter offset
        frame, boxes = bench_frame("heatmap")
        rt = edgepose.load(auto_b, threads=args.threads)
        rt_g, rt_h = edgepose.load(graph_b, threads=args.threads), edgepose.load(host_b, threads=args.threads)
        rt_a = edgepose.load(argmax_b, threads=args.threads)
        full, literal = _bare(auto_b, frame, boxes[0], rt.spec, args.threads)
        tensor = np.asarray(edgepose.pipeline.preprocess.topdown_batch(frame, boxes, rt.spec.input)[0])
        heatmaps = rt_h.infer(tensor)[0]
        paths = {"edgepose rt(frame, box)": lambda: rt(frame, boxes), "bare warp+norm+run": full,
                 "bare warp+run": literal, "infer, decode in graph": lambda: rt_g.infer(tensor),
                 "infer, argmax decode in graph": lambda: rt_a.infer(tensor),
                 "infer, host-decode model": lambda: rt_h.infer(tensor),
                 "host DARK decode (numpy) of its heatmaps": lambda: rt_h.codec.decode(heatmaps)}
        samples = {k: [] for k in paths}
        per_round = {k: [] for k in paths}
        for _ in range(args.rounds):
            for k, fn in paths.items():
                t = times_ms(fn, args.runs, warmup=20)
                samples[k] += t
                per_round[k].append(statistics.median(t))
        decode_mode = rt.spec.decode
        for r in (rt, rt_g, rt_a, rt_h):
            r.close()
    med = {k: statistics.median(v) for k, v in samples.items()}
    _report(args, med, per_round, decode_mode)


def _ratio(per_round, a: str, b: str) -> str:
    r = [x / y for x, y in zip(per_round[a], per_round[b])]
    return f"{statistics.median(r):.3f} (rounds {min(r):.3f}–{max(r):.3f})"


def _report(args, med, per_round, decode_mode) -> None:
    rows = [[k, f"{v:.3f}"] for k, v in med.items()]
    print(f"# Runtime overhead — {today()} — {machine()}")
    print(f"\n`.venv/bin/python benchmarks/overhead.py --threads {args.threads} --runs {args.runs} "
          f"--rounds {args.rounds}` — {MODEL}, onnx bundle (decode {decode_mode}), batch 1, median ms\n")
    print(table(["path", "median ms"], rows))
    e2e, full, lit = "edgepose rt(frame, box)", "bare warp+norm+run", "bare warp+run"
    g, h = "infer, decode in graph", "infer, host-decode model"
    print(f"\n- edgepose end to end / bare warp+norm+run: {_ratio(per_round, e2e, full)} (goal ≤ 1.10)")
    print(f"- edgepose end to end / bare warp+run (tensor normalised once): {_ratio(per_round, e2e, lit)}")
    print(f"- inference with decode in graph (DARK) / without: {_ratio(per_round, g, h)} (goal ≤ 1.03)")
    print(f"- inference with argmax decode in graph / without: {_ratio(per_round, 'infer, argmax decode in graph', h)}")
    dark_graph = med[g] - med[h]
    print(f"- DARK decode: in the graph +{dark_graph:.3f} ms, on the host "
          f"{med['host DARK decode (numpy) of its heatmaps']:.3f} ms")


if __name__ == "__main__":
    main()
