"""Golden samples: a few inputs stored in every bundle with what the exporting machine computed from them at
each stage, so the device the bundle lands on can check itself (:mod:`edgepose.verify`).

Stored per sample (in ``golden.npz``, numbers only, no pickles):

- the image (shrunk so its longer side is at most :data:`MAX_SIDE`) and its person boxes;
- ``crops``: the preprocessed input before normalisation, BGR uint8 — the affine crops (top-down) or the
  letterboxed frame (bottom-up). A device whose OpenCV rounds differently shows up here, in grey levels;
- a digest of each raw model output on the tensor made from those crops: :data:`N_VALUES` values at fixed
  positions, its largest :data:`N_TOP` values and (mean, std, min, max) — enough to tell a kernel or delegate
  difference from noise without storing whole heatmaps;
- the decoded keypoints in input pixels, and the end-to-end keypoints in image pixels.

The manifest's ``golden`` entry holds the tolerances per stage (by precision), the tensor checksums and the
backend that produced the reference. Device side: numpy and OpenCV only.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from edgepose.pipeline.preprocess import bottomup_crops, to_tensor, topdown_crops

GOLDEN_FILE = "golden.npz"
MAX_SIDE = 256  # stored images are shrunk to this longer side
MAX_SAMPLES = 3
MAX_PEOPLE = 2  # top-down boxes kept per sample
MAX_BYTES = 1 << 20  # size budget of the golden file; samples are dropped (from the last) to stay under it
N_VALUES = 256
N_TOP = 32
SCORE_MIN = 0.3  # joints compared by keypoint position: those the reference scores at least this
# INT8 maps move more under one grey level of noise: joints up to 0.48 moved > 1 heatmap cell (docs/benchmarks.md)
SCORE_MIN_INT8 = 0.5

# per precision: preprocessing (grey levels, share of values that may differ), inference (largest difference
# of the output digest as a share of the reference output's range), keypoints (input pixels)
TOLERANCES = {
    "fp32": {"levels": 1, "fraction": 0.01, "relative": 1e-3, "px": 0.5},
    "fp16": {"levels": 1, "fraction": 0.01, "relative": 2e-2, "px": 2.0},
    "int8": {"levels": 1, "fraction": 0.01, "relative": 5e-2, "px": 4.0},
}


def tolerances_for(precision: str) -> dict:
    return dict(TOLERANCES.get(precision, TOLERANCES["int8"]))


def shrink(image: np.ndarray, boxes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``image`` so its longer side is at most MAX_SIDE (boxes with it); None boxes → the whole image."""
    import cv2

    h, w = image.shape[:2]
    boxes = np.array([[0, 0, w, h]], np.float32) if boxes is None or len(boxes) == 0 else np.asarray(boxes)
    boxes = boxes.astype(np.float32).reshape(-1, 4)
    f = min(1.0, MAX_SIDE / max(h, w))
    if f < 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        boxes = boxes * np.array([size[0] / w, size[1] / h] * 2, np.float32)
    return np.ascontiguousarray(image), boxes


def crops_for(spec, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runtime's preprocessing up to (not including) normalisation: uint8 crops and forward matrices."""
    if spec.bottom_up:
        return bottomup_crops(image, spec.input)
    return topdown_crops(image, boxes, spec.input)


def decoded(rt, outs: list[np.ndarray]) -> np.ndarray:
    """The runtime's decode of raw outputs → keypoints (P, K, 3) in input pixels (bottom-up: people above the
    bundle's score threshold, best first)."""
    if not rt.spec.bottom_up:
        return rt.decode_topdown(outs, outs[0].shape[0])
    kps, scores, _ = rt.decode_bottomup(outs)
    keep = scores[0] >= rt.spec.score_threshold
    order = np.argsort(-scores[0][keep], kind="stable")
    return np.asarray(kps[0][keep][order], np.float32)


def end_to_end(rt, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The whole pipeline on the image → keypoints (P, K, 3) in image pixels (bottom-up: best first)."""
    if rt.spec.bottom_up:
        poses = rt(image)
        order = np.argsort(-poses.scores, kind="stable")
        return poses.keypoints[order]
    return rt(image, boxes).keypoints


def sample_positions(size: int) -> np.ndarray:
    return np.unique(np.linspace(0, size - 1, min(size, N_VALUES)).astype(np.int64))


def digest(out: np.ndarray) -> dict[str, np.ndarray]:
    """Values at fixed positions, the largest values and (mean, std, min, max) of one raw output."""
    flat = np.asarray(out, np.float64).ravel()
    if flat.size == 0:
        return {"values": np.zeros(0), "top": np.zeros(0), "stats": np.zeros(4)}
    top = np.sort(flat)[-N_TOP:]
    stats = np.array([flat.mean(), flat.std(), flat.min(), flat.max()])
    return {"values": flat[sample_positions(flat.size)], "top": top, "stats": stats}


def tensor_sha256(tensor: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(tensor).tobytes()).hexdigest()


def record(rt, pairs, *, precision: str) -> tuple[dict[str, np.ndarray], dict]:
    """Run ``rt`` (loaded, over the bundle's files) on up to MAX_SAMPLES (image, boxes) pairs; → (arrays for
    the golden file, the manifest entry without file name and size)."""
    arrays, samples = {}, []
    for i, (image, boxes) in enumerate(pairs[:MAX_SAMPLES]):
        image, boxes = shrink(image, boxes)
        boxes = boxes[:MAX_PEOPLE] if not rt.spec.bottom_up else np.zeros((0, 4), np.float32)
        crops, _ = crops_for(rt.spec, image, boxes)
        tensor = to_tensor(crops, rt.spec.input)
        outs = rt.infer(tensor)
        arrays.update({f"s{i}_image": image, f"s{i}_boxes": boxes, f"s{i}_crops": crops,
                       f"s{i}_keypoints": decoded(rt, outs), f"s{i}_poses": end_to_end(rt, image, boxes)})
        for j, out in enumerate(outs):
            for key, value in digest(out).items():
                arrays[f"s{i}_out{j}_{key}"] = value
        samples.append({"tensor_sha256": tensor_sha256(tensor),
                        "outputs": [{"shape": list(np.shape(o)), "dtype": str(np.asarray(o).dtype)} for o in outs]})
    score_min = SCORE_MIN if precision in ("fp32", "fp16") else SCORE_MIN_INT8
    entry = {"samples": samples, "tolerances": tolerances_for(precision), "score_min": score_min,
             "reference_backend": rt.backend}
    return arrays, entry


def write(bundle_dir: str | Path, arrays: dict[str, np.ndarray], entry: dict) -> dict:
    """Write the golden file into ``bundle_dir`` (temp + rename) within MAX_BYTES, dropping the last samples
    when over; → the manifest entry with ``file`` and ``bytes``."""
    n = len(entry["samples"])
    while True:
        kept = {k: v for k, v in arrays.items() if int(k[1:k.index("_")]) < n}
        buf = io.BytesIO()
        np.savez_compressed(buf, **kept)
        if buf.tell() <= MAX_BYTES or n == 1:
            break
        n -= 1
    path = Path(bundle_dir) / GOLDEN_FILE
    tmp = path.with_name(f".{GOLDEN_FILE}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return dict(entry, samples=entry["samples"][:n], file=GOLDEN_FILE, bytes=path.stat().st_size)


def load(bundle_dir: str | Path, entry: dict) -> list[dict[str, np.ndarray]]:
    """The golden file's samples as one dict per sample (keys without the ``s<i>_`` prefix)."""
    with np.load(Path(bundle_dir) / entry["file"], allow_pickle=False) as data:
        samples = [{} for _ in entry["samples"]]
        for key in data.files:
            i, name = key.split("_", 1)
            samples[int(i[1:])][name] = data[key]
    return samples
