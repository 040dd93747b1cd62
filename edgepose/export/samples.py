"""Sample inputs for parity checks: real images when a source is given, synthetic figures otherwise.

Samples go through the runtime's own preprocessing (:mod:`edgepose.pipeline.preprocess`), so the
check sees exactly what a deployed model sees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.errors import DataError
from edgepose.pipeline.preprocess import bottomup_batch, topdown_batch

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _synthetic_images(bottom_up: bool, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from edgepose.data.synthetic import render_sample

    rng = np.random.default_rng(seed)
    mode = "multi" if bottom_up else "single"
    size = (256, 256) if mode == "multi" else (192, 256)
    out = []
    for _ in range(n):
        image, anns = render_sample(rng, mode=mode, image_size=size)
        boxes = np.asarray([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                            for a in anns], np.float32).reshape(-1, 4)
        out.append((image, boxes))
    return out


def _source_images(source: str | Path, n: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    import cv2

    from edgepose.data.coco import CocoKeypoints

    source = Path(source)
    if source.suffix == ".json":
        coco = CocoKeypoints(source)
        out = []
        for image_id in list(coco.image_ids)[:n]:
            anns = [a for a in coco.annotations_for(image_id) if not a.get("iscrowd", 0)]
            boxes = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
            out.append((coco.load_image(image_id), boxes.reshape(-1, 4)))
        return out
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTS)[:n]
        images = [(img, None) for img in (cv2.imread(str(p)) for p in files) if img is not None]
        if not images:
            raise DataError(f"no readable images ({', '.join(IMAGE_EXTS)}) in {source}")
        return images
    raise DataError(f"sample source {source} is neither a COCO json nor an image folder")


def sample_images(spec, *, source: str | Path | None = None, n: int = 4,
                  seed: int = 0) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(BGR image, person boxes xyxy or None) pairs: from ``source`` (a COCO json or an image folder) or, without
    one, synthetic figures drawn from ``seed``."""
    return _source_images(source, n) if source else _synthetic_images(spec.bottom_up, n, seed)


def sample_inputs(spec, *, source: str | Path | None = None, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """A list of input batches (each as ``spec`` wants: layout, dtype) for parity checks."""
    batches = []
    for image, boxes in sample_images(spec, source=source, n=n, seed=seed):
        if spec.bottom_up:
            batches.append(bottomup_batch(image, spec.input)[0])
            continue
        h, w = image.shape[:2]
        if boxes is None or len(boxes) == 0:
            boxes = np.array([[0, 0, w, h]], np.float32)
        batches.append(topdown_batch(image, boxes[:4], spec.input)[0])
    return batches
