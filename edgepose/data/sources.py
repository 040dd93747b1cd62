"""Parse ``--data`` strings into datasets.

- ``synthetic`` / ``synthetic:N`` — the procedural training set (single-person crops for top-down
  models, multi-person scenes for bottom-up ones), generated once from a seed and cached;
- ``synthetic-val`` / ``synthetic-val:N`` — a held-out set drawn from a disjoint seed;
- ``coco:ANN.json[:IMG_DIR]`` — any COCO keypoints json (image folder defaults to the json's folder).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgepose.data.coco import CocoKeypoints
from edgepose.errors import ConfigError

TRAIN_SEED, VAL_SEED = 0, 1_000_003
DEFAULT_COUNTS = {("heatmap", "train"): 4000, ("heatmap", "val"): 300,
                  ("centernet", "train"): 3000, ("centernet", "val"): 200}


def cache_dir() -> Path:
    """Where generated data lives: $EDGEPOSE_CACHE, else ~/.cache/edgepose."""
    return Path(os.environ.get("EDGEPOSE_CACHE") or Path.home() / ".cache" / "edgepose")


def synthetic_dataset(kind: str, split: str = "train", num_images: int | None = None,
                      progress: bool = True) -> CocoKeypoints:
    """Generate (or reuse) the synthetic set for a model kind ('heatmap' → single, 'centernet' → multi)."""
    from edgepose.data.synthetic import GENERATOR_VERSION, generate_dataset

    mode = "multi" if kind == "centernet" else "single"
    n = num_images or DEFAULT_COUNTS[(kind if kind == "centernet" else "heatmap", split)]
    seed = TRAIN_SEED if split == "train" else VAL_SEED
    out = cache_dir() / "synthetic" / f"{mode}-{split}-n{n}-s{seed}-v{GENERATOR_VERSION}"
    ann = generate_dataset(out, num_images=n, mode=mode, seed=seed, progress=progress)
    return CocoKeypoints(ann, Path(ann).parent)


def resolve_dataset(spec: str, kind: str, *, split: str = "train", progress: bool = True) -> CocoKeypoints:
    """Turn a ``--data`` string into a :class:`CocoKeypoints`."""
    name, _, rest = spec.partition(":")
    if name in ("synthetic", "synthetic-val"):
        n = None
        if rest:
            try:
                n = int(rest)
            except ValueError:
                raise ConfigError(f"--data {spec!r}: expected synthetic[:NUM_IMAGES], got {rest!r} "
                                  "for the image count") from None
        return synthetic_dataset(kind, "val" if name == "synthetic-val" else split, n, progress)
    if name == "coco":
        ann, _, img_dir = rest.partition(":")
        if not ann:
            raise ConfigError(f"--data {spec!r}: expected coco:ANN.json[:IMG_DIR]")
        return CocoKeypoints(ann, img_dir or None)
    raise ConfigError(f"--data {spec!r}: expected 'synthetic[:N]', 'synthetic-val[:N]' or 'coco:ANN.json[:IMG_DIR]'")
