"""MPII reader for the mmpose / HRNet list format (numpy + OpenCV only).

Each entry of the JSON list holds ``image`` (file name), ``joints`` (16, 2), ``joints_vis`` (16,) 1/0,
``center`` (2,) and ``scale`` (person height / 200 px). Coordinates in the file are MATLAB 1-based;
this reader converts them to 0-based pixel-centre coordinates (subtract 1) as the rest of edgepose
expects. Joints are in MPII16 order (``edgepose.keypoints.MPII16``); v = 2 for visible joints, and
invisible ones are stored as (0, 0, 0).

The person box: MPII gives a centre and a height only, so the box is a square of side
``scale * 200`` px around the centre moved down by ``15 * scale`` px (the usual MPII adjustment
that keeps the feet inside); the top-down transform adds its own padding and aspect ratio.

Head size: the official PCKh normaliser is 0.6 x the diagonal of the annotated head box, which this
format does not carry. ``head_size`` here is an ESTIMATE: it assumes a square head box whose side is
the head_top - upper_neck distance, i.e. ``0.6 * sqrt(2) * |head_top - upper_neck|``; it is NaN when
either joint is not labelled. Numbers computed with it are close to, but not, official PCKh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.data.coco import Instance, read_image, read_json
from edgepose.errors import DataError
from edgepose.keypoints import MPII16

PIXEL_STD = 200.0
HEAD_SCALE = 0.6 * math.sqrt(2.0)
_REQUIRED = ("image", "joints", "joints_vis", "center", "scale")


@dataclass
class MpiiInstance(Instance):
    """An MPII person: ``Instance`` fields plus the file's centre / scale and the estimated head size."""

    image_file: str = ""
    center: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    person_scale: float = 0.0  # the file's scale: person height / 200 px
    head_size: float = float("nan")  # estimated PCKh normaliser, see the module docstring


def estimate_head_size(keypoints: np.ndarray) -> float:
    """``0.6 * sqrt(2) * |head_top - upper_neck|`` from MPII16 keypoints (16, 3); NaN if not labelled."""
    top, neck = keypoints[MPII16.index("head_top")], keypoints[MPII16.index("upper_neck")]
    if top[2] <= 0 or neck[2] <= 0:
        return float("nan")
    return float(HEAD_SCALE * np.hypot(*(top[:2] - neck[:2])))


class MpiiKeypoints:
    """An MPII list-format JSON file and its image folder (default: the JSON's folder)."""

    def __init__(self, ann_file: str | Path, img_dir: str | Path | None = None) -> None:
        self.ann_file = Path(ann_file)
        self.img_dir = Path(img_dir) if img_dir is not None else self.ann_file.parent
        self.schema = MPII16
        data = read_json(self.ann_file, "MPII annotation file")
        if not isinstance(data, list):
            raise DataError(f"{self.ann_file}: expected a JSON list of MPII entries; received {type(data).__name__}")
        self._instances = [self._parse(i, e) for i, e in enumerate(data)]
        self._files = sorted({inst.image_file for inst in self._instances})
        self._ids = {name: i for i, name in enumerate(self._files)}
        for inst in self._instances:
            inst.image_id = self._ids[inst.image_file]

    def _parse(self, index: int, entry: object) -> MpiiInstance:
        if not isinstance(entry, dict) or any(k not in entry for k in _REQUIRED):
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise DataError(f"{self.ann_file}: entry {index} needs keys {list(_REQUIRED)}; received {got}")
        k = self.schema.num_keypoints
        joints = np.asarray(entry["joints"], dtype=np.float32)
        vis = np.asarray(entry["joints_vis"], dtype=np.float32).reshape(-1)
        if joints.shape != (k, 2) or vis.shape != (k,):
            raise DataError(f"{self.ann_file}: entry {index} has joints {joints.shape} and joints_vis {vis.shape}; "
                            f"expected ({k}, 2) and ({k},) for schema 'mpii'")
        kps = np.zeros((k, 3), dtype=np.float32)
        kps[:, :2] = joints - 1.0
        kps[:, 2] = np.where(vis > 0, 2.0, 0.0)
        kps[kps[:, 2] <= 0] = 0.0
        s = float(entry["scale"])
        center = np.asarray(entry["center"], dtype=np.float32).reshape(2) - 1.0
        center[1] += 15.0 * s
        side = s * PIXEL_STD
        bbox = np.array([center[0] - side / 2, center[1] - side / 2, side, side], dtype=np.float32)
        return MpiiInstance(image_id=-1, ann_id=index, bbox_xywh=bbox, keypoints=kps, area=side * side,
                            category_id=1, image_file=str(entry["image"]), center=center,
                            person_scale=s, head_size=estimate_head_size(kps))

    @property
    def num_keypoints(self) -> int:
        return self.schema.num_keypoints

    @property
    def image_files(self) -> list[str]:
        """Distinct image file names; ``image_id`` is the index into this list."""
        return list(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def instances(self, min_keypoints: int = 1) -> list[MpiiInstance]:
        """Persons with at least ``min_keypoints`` visible joints; DataError if none."""
        out = [inst for inst in self._instances if inst.num_visible >= min_keypoints]
        if not out:
            raise DataError(f"{self.ann_file}: no usable person instances (min_keypoints={min_keypoints}) "
                            f"among {len(self._instances)} entries")
        return out

    def image_path(self, image: int | str) -> Path:
        if isinstance(image, str):
            name = image
        elif 0 <= int(image) < len(self._files):
            name = self._files[int(image)]
        else:
            raise DataError(f"image id {image} is out of range for {self.ann_file} ({len(self)} images)")
        return self.img_dir / name

    def load_image(self, image: int | str) -> np.ndarray:
        """BGR uint8 (H, W, 3) image by id (index into ``image_files``) or file name."""
        return read_image(self.image_path(image))
