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
MODES = ("single", "multi")
DEFAULT_COUNTS = {("single", "train"): 4000, ("single", "val"): 300,  # by sample mode: one figure per image
                  ("multi", "train"): 3000, ("multi", "val"): 200}  # (top-down) or whole frames (bottom-up)


def cache_dir() -> Path:
    """Where generated data lives: $EDGEPOSE_CACHE, else ~/.cache/edgepose."""
    return Path(os.environ.get("EDGEPOSE_CACHE") or Path.home() / ".cache" / "edgepose")


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"sample mode must be one of {MODES} (a head's sample_mode: edgepose.heads.get_head(kind)"
                          f".sample_mode), got {mode!r}")
    return mode


def synthetic_dataset(mode: str, split: str = "train", num_images: int | None = None,
                      progress: bool = True) -> CocoKeypoints:
    """Generate (or reuse) the synthetic set of ``mode``: 'single' (one figure per image, top-down heads) or
    'multi' (frames of several people, bottom-up heads) — ``get_head(kind).sample_mode``."""
    from edgepose.data.synthetic import GENERATOR_VERSION, generate_dataset

    mode = _check_mode(mode)
    n = num_images or DEFAULT_COUNTS[(mode, split)]
    seed = TRAIN_SEED if split == "train" else VAL_SEED
    out = cache_dir() / "synthetic" / f"{mode}-{split}-n{n}-s{seed}-v{GENERATOR_VERSION}"
    ann = generate_dataset(out, num_images=n, mode=mode, seed=seed, progress=progress)
    return CocoKeypoints(ann, Path(ann).parent)


def parse_data_spec(spec: str, flag: str = "--data") -> tuple[str, int | None, str | None, str | None]:
    """Check a data string without generating or reading anything → (name, N or None, ann json, image dir).

    Also takes a bare ``ANN.json`` (same as ``coco:ANN.json``). One-line ConfigErrors name ``flag``."""
    expected = "'synthetic[:N]', 'synthetic-val[:N]', 'coco:ANN.json[:IMG_DIR]' or a COCO .json file"
    name, _, rest = str(spec).partition(":")
    if name in ("synthetic", "synthetic-val"):
        if not rest:
            return name, None, None, None
        try:
            n = int(rest)
        except ValueError:
            raise ConfigError(f"{flag} {spec!r}: expected {name}[:NUM_IMAGES], got {rest!r} for the image count") \
                from None
        if n < 1:
            raise ConfigError(f"{flag} {spec!r}: expected at least 1 image, got {n}")
        return name, n, None, None
    if name == "coco" or str(spec).endswith(".json"):
        ann, _, img_dir = rest.partition(":") if name == "coco" else (str(spec), "", "")
        if not ann:
            raise ConfigError(f"{flag} {spec!r}: expected coco:ANN.json[:IMG_DIR]")
        if not Path(ann).is_file():
            raise ConfigError(f"{flag} {spec!r}: annotation file {ann} not found; expected {expected}")
        return "coco", None, ann, img_dir or None
    raise ConfigError(f"{flag} {spec!r}: expected {expected}")


def resolve_dataset(spec: str, mode: str, *, split: str = "train", progress: bool = True, limit: int | None = None,
                    flag: str = "--data") -> CocoKeypoints:
    """Turn a data string (see :func:`parse_data_spec`) into a :class:`CocoKeypoints`. ``limit``: only that many
    images will be used; a synthetic set is then generated that small (image i does not depend on the set's size).
    ``mode``: how synthetic images are drawn, 'single' or 'multi' (``get_head(kind).sample_mode``)."""
    name, n, ann, img_dir = parse_data_spec(spec, flag)
    if name == "coco":
        return CocoKeypoints(ann, img_dir)
    s = "val" if name == "synthetic-val" else split
    if limit is not None:
        n = min(n or DEFAULT_COUNTS[(_check_mode(mode), s)], limit)
    return synthetic_dataset(mode, s, n, progress)
