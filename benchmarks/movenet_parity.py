"""Parity of the MoveNet ports with Google's graphs on real pixels: the PyTorch port and every fp32 bundle
against the tf2onnx references (../shared/models/movenet-onnx), joint by joint.

    .venv/bin/python benchmarks/movenet_parity.py [--models movenet-lightning movenet-thunder movenet-multipose]
        [--targets onnx openvino tflite] [--frames-per-video 50]

Frames: the coco-mini photos and ``--frames-per-video`` frames spread evenly over each real video. Each frame
goes through the runtime's own preprocessing (single-pose: the whole frame as the person box; MultiPose: the
letterboxed frame); Google's graph gets the same crop as int32 RGB (exact: crops are uint8 before scaling).
Per runtime: the share of joints within 0.5 input px of Google's output (MultiPose: people scoring >= 0.1),
near-ties counted apart (the reference's decision, a centre or joint argmax / top-k, has a runner-up within
1e-4 of its value: equal models may go either way there), and the raw heads' largest relative error
(max |a - b| / max |a| per frame and head; bundles decoding in the graph have no raw heads to compare).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import machine, table, today  # noqa: E402

from tests.codecs.movenet_reference import SHARED, Reference  # noqa: E402

TIE = 1e-4
PX = 0.5


def frames(per_video: int) -> list[tuple[str, np.ndarray]]:
    import cv2

    data = SHARED / "data"
    out = [(p.name, cv2.imread(str(p))) for p in sorted((data / "coco-mini").glob("*.jpg"))]
    for video in sorted((data / "real-video").iterdir()):
        cap = cv2.VideoCapture(str(video))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for pos in np.linspace(0, n - 1, per_video).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(pos))
            ok, frame = cap.read()
            if ok:
                out.append((f"{video.name}#{pos}", frame))
        cap.release()
    return out


def _gap(values: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Relative margin of the chosen entry over the best other one, along the last axis."""
    chosen = np.take_along_axis(values, pick[..., None], -1)[..., 0]
    others = values.copy()
    np.put_along_axis(others, pick[..., None], -np.inf, -1)
    return (chosen - others.max(-1)) / np.maximum(np.abs(chosen), 1e-12)


def single_ties(codec, maps) -> np.ndarray:
    """(N, K) bool: the centre argmax or the joint's weighted argmax is a near-tie in these raw maps."""
    from edgepose.codecs.movenet import KPT_DIST_OFFSET, gather_cells, sigmoid

    centre, regress, heatmap, _ = codec.split_outputs(maps)
    n, k = centre.shape[0], codec.num_keypoints
    wc = (sigmoid(centre[:, 0]) * codec.weight).reshape(n, -1)
    idx = wc.argmax(1)
    cy, cx = codec._cells(idx[:, None])
    reg = gather_cells(regress, idx[:, None]).reshape(n, k, 2)
    gy, gx = codec.cell_grid()
    dist = np.sqrt((gy - cy - reg[..., :1]) ** 2 + (gx - cx - reg[..., 1:]) ** 2)
    weighted = sigmoid(heatmap).reshape(n, k, -1) / (dist + np.float32(KPT_DIST_OFFSET))
    ties = _gap(weighted, weighted.argmax(-1)) < TIE
    return ties | (_gap(wc, idx) < TIE)[:, None]


def raw_rel(ref_maps, maps) -> float:
    return max(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12)) for a, b in zip(ref_maps, maps))


def compare_single(ref_k, cand_k, ties) -> tuple[int, int, int]:
    d = np.linalg.norm(ref_k[..., :2] - cand_k[..., :2], axis=-1)
    return int(((d <= PX) & ~ties).sum()), int((~ties).sum()), int(ties.sum())


def compare_multi(ref, cand, min_score: float = 0.1) -> tuple[int, int, int]:
    """People scoring >= min_score in the reference, matched to the candidate's nearest slot; a person whose
    centre score ties with another slot's (top-k order may swap) counts its joints as ties."""
    (rk, rs, _), (ck, _, _) = ref, cand
    ok = total = ties = 0
    for p in np.flatnonzero(rs[0] >= min_score):
        d = np.linalg.norm(ck[0, :, :, :2] - rk[0, p, None, :, :2], axis=-1)  # (P, K)
        j = int(np.argmin(d.mean(1)))
        others = np.delete(rs[0], p)
        if np.any(np.abs(others - rs[0, p]) <= TIE * rs[0, p]):
            ties += d.shape[1]
            continue
        ok += int((d[j] <= PX).sum())
        total += d.shape[1]
    return ok, total, ties


def candidates(name: str, targets: list[str], work: Path) -> dict:
    """{label: loaded runtime}: the PyTorch port (host decode) and each target's fp32 bundle, host and graph decode."""
    import edgepose
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    model = create(name, weights="default")
    out = {"pytorch": TorchRuntime(model, threads=2).load()}
    for target in targets:
        for decode in ("host", "graph"):
            b = edgepose.export(model, target=target, decode=decode, out=work / f"{name}-{target}-{decode}", log=None)
            out[f"{target} ({decode})"] = edgepose.load(b.path, threads=2)
    return out


def run_model(name: str, args, shots, work: Path) -> list[list]:
    from edgepose.pipeline.preprocess import bottomup_batch, topdown_batch

    ref = Reference(name)
    rts = candidates(name, args.targets, work)
    spec = rts["pytorch"].spec
    stats = {label: [0, 0, 0, 0.0] for label in rts}  # within, compared, ties, raw rel
    for _, frame in shots:
        if ref.multipose:
            batch, _ = bottomup_batch(frame, spec.input)
        else:
            h, w = frame.shape[:2]
            batch, _ = topdown_batch(frame, np.array([[0, 0, w, h]], np.float32), spec.input)
        rgb = np.rint((batch[0].transpose(1, 2, 0) * 0.5 + 0.5) * 255).astype(np.uint8)
        ref_maps, ref_out = ref.run(rgb)
        ties = None if ref.multipose else single_ties(rts["pytorch"].codec, ref_maps)
        for label, rt in rts.items():
            x = batch if rt.spec.input.layout == "NCHW" else np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
            outs = rt.infer(x)
            if rt.spec.decode == "host":
                stats[label][3] = max(stats[label][3], raw_rel(ref_maps, outs))
                dec = rt.codec.decode(tuple(outs))
            else:
                dec = tuple(outs) if ref.multipose else outs[0]
            r = compare_multi(ref_out, dec) if ref.multipose else compare_single(ref_out[0], dec, ties)
            for i in range(3):
                stats[label][i] += r[i]
    rows = []
    for label, (ok, total, ties, rel) in stats.items():
        rel_txt = f"{rel:.1e}" if label == "pytorch" or "host" in label else "– (graph decode)"
        rows.append([name, label, f"{100 * ok / max(total, 1):.2f} % ({ok}/{total})", ties, rel_txt])
        rts[label].close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["movenet-lightning", "movenet-thunder", "movenet-multipose"])
    p.add_argument("--targets", nargs="+", default=["onnx", "openvino", "tflite"])
    p.add_argument("--frames-per-video", type=int, default=50)
    args = p.parse_args()
    shots = frames(args.frames_per_video)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.models:
            rows += run_model(name, args, shots, Path(work))
    print(f"\n{len(shots)} frames (coco-mini photos + {args.frames_per_video} per real video), {today()}, "
          f"{machine()}\n")
    print(table(["model", "runtime", f"joints within {PX} px of Google's graph", "near-tie joints",
                 "raw heads max rel. error"], rows))


if __name__ == "__main__":
    main()
