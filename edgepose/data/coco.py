"""COCO keypoints reader (numpy + OpenCV only).

Files store boxes as ``[x, y, w, h]`` and keypoints as flat ``[x1, y1, v1, ...]`` lists (v: 0 = not
labelled, 1 = labelled but hidden, 2 = visible). In memory: ``bbox_xywh`` (4,) float32 and keypoints
(K, 3) float32 per instance, in pixel coordinates of the original image.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepose.errors import DataError
from edgepose.keypoints import KeypointSchema, get_schema
from edgepose.utils.numbers import is_number


def read_json(path: str | Path, what: str) -> Any:
    """Load a JSON file; DataError (one line) if it is missing or corrupt, naming the file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} not found: {p} (expected an existing JSON file)")
    try:
        with p.open("r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"corrupt {what} {p}: {e.msg} at line {e.lineno} column {e.colno} (char {e.pos})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {what} {p}: {e}") from None


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8 (H, W, 3); DataError naming the path if missing or unreadable."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"image file not found: {p}")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot decode image file {p} (expected a JPEG/PNG/... that OpenCV can read)")
    return img


@dataclass
class Instance:
    """One annotated person: ``bbox_xywh`` (4,) float32, ``keypoints`` (K, 3) float32 x, y, v."""

    image_id: int
    ann_id: int
    bbox_xywh: np.ndarray
    keypoints: np.ndarray
    area: float
    category_id: int = 1
    iscrowd: bool = False

    @property
    def bbox_xyxy(self) -> np.ndarray:
        x, y, w, h = self.bbox_xywh
        return np.array([x, y, x + w, y + h], dtype=np.float32)

    @property
    def num_visible(self) -> int:
        return int(np.count_nonzero(self.keypoints[:, 2] > 0))


class CocoKeypoints:
    """A COCO keypoints annotation file and its image folder.

    ``img_dir`` defaults to the folder that holds ``ann_file``. Keypoint counts are checked against
    ``schema`` when the file is read.
    """

    def __init__(self, ann_file: str | Path, img_dir: str | Path | None = None,
                 schema: KeypointSchema | str = "coco") -> None:
        self.ann_file = Path(ann_file)
        self.img_dir = Path(img_dir) if img_dir is not None else self.ann_file.parent
        self.schema = get_schema(schema)
        data = read_json(self.ann_file, "COCO annotation file")
        if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            hint = (" (a JSON list, as detection results or MPII-style annotations are: MPII is read by "
                    "edgepose.data.mpii, PCKh in edgepose.eval.pck)") if isinstance(data, list) else ""
            raise DataError(f"{self.ann_file} is not a COCO annotation file: expected keys 'images' and "
                            f"'annotations'; received {keys}{hint}")
        data = _persons_only(data)  # pycocotools averages AP over every category in the file
        self._data = data
        self._images = {}
        for im in data["images"]:
            if not isinstance(im, dict) or not _is_int(im.get("id")) or not isinstance(im.get("file_name"), str):
                raise DataError(f"{self.ann_file}: image entry {im!r:.100} needs an integer 'id' and a 'file_name' "
                                "(COCO ids are integers)")
            self._images[int(im["id"])] = im
        self._anns: dict[int, list[dict]] = {i: [] for i in self._images}
        for ann in data["annotations"]:
            self._check_annotation(ann)
            self._anns.setdefault(int(ann["image_id"]), []).append(ann)
        _check_names(self.ann_file, data, self.schema)

    def _check_annotation(self, ann: dict) -> None:
        k = self.schema.num_keypoints
        where = f"{self.ann_file}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r:.60}"
        if not isinstance(ann, dict) or not _is_int(ann.get("image_id")):
            raise DataError(f"{where} needs an integer 'image_id'")
        kps = ann.get("keypoints")
        if not isinstance(kps, list) or not all(is_number(v, finite=False) for v in kps):
            raise DataError(f"{where} has keypoints {kps!r:.60}; expected a list of {3 * k} numbers (x, y, v)")
        if len(kps) != 3 * k:
            raise DataError(f"{where} has {len(kps) / 3:g} keypoints; expected {k} for schema {self.schema.name!r}")
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(is_number(v, finite=False) for v in box):
            raise DataError(f"{where} has bbox {box!r:.60}; expected [x, y, w, h] numbers")
        if int(ann["image_id"]) not in self._images:
            raise DataError(f"{where} refers to image id {ann.get('image_id')}, which is not in 'images'")

    @property
    def image_ids(self) -> list[int]:
        return list(self._images)

    @property
    def num_keypoints(self) -> int:
        return self.schema.num_keypoints

    def __len__(self) -> int:
        return len(self._images)

    def image_info(self, image_id: int) -> dict:
        """The file's 'images' entry (file_name, width, height, id, ...)."""
        if int(image_id) not in self._images:
            raise DataError(f"image id {image_id} is not in {self.ann_file} ({len(self)} images)")
        return self._images[int(image_id)]

    def image_path(self, image_id: int) -> Path:
        return self.img_dir / self.image_info(image_id)["file_name"]

    def load_image(self, image_id: int) -> np.ndarray:
        """BGR uint8 (H, W, 3) image; DataError naming the path if it is missing."""
        return read_image(self.image_path(image_id))

    def annotations_for(self, image_id: int) -> list[dict]:
        """The raw annotation dicts of one image (boxes xywh, flat keypoints)."""
        self.image_info(image_id)
        return list(self._anns.get(int(image_id), []))

    def _to_instance(self, ann: dict) -> Instance:
        k = self.schema.num_keypoints
        kps = np.asarray(ann["keypoints"], dtype=np.float32).reshape(k, 3)
        kps[kps[:, 2] <= 0] = 0.0
        return Instance(image_id=int(ann["image_id"]), ann_id=int(ann.get("id", -1)),
                        bbox_xywh=np.asarray(ann["bbox"], dtype=np.float32).reshape(4), keypoints=kps,
                        area=float(ann.get("area", 0.0)), category_id=int(ann.get("category_id", 1)),
                        iscrowd=bool(ann.get("iscrowd", 0)))

    def instances(self, min_keypoints: int = 1, include_crowd: bool = False) -> list[Instance]:
        """Persons with at least ``min_keypoints`` labelled joints and a box of positive size.

        Raises DataError if none qualifies.
        """
        out = []
        for image_id in self._images:
            for ann in self._anns.get(image_id, []):
                if ann.get("iscrowd", 0) and not include_crowd:
                    continue
                inst = self._to_instance(ann)
                if inst.num_visible < min_keypoints or inst.bbox_xywh[2] <= 0 or inst.bbox_xywh[3] <= 0:
                    continue
                out.append(inst)
        if not out:
            raise DataError(f"{self.ann_file}: no usable person instances (min_keypoints={min_keypoints}, "
                            f"include_crowd={include_crowd}) among {len(self._data['annotations'])} annotations")
        return out

    def to_coco_dict(self) -> dict:
        """A deep copy of the file's content (for pycocotools)."""
        return copy.deepcopy(self._data)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _persons_only(data: dict) -> dict:
    """``data`` without the annotations and categories of other classes (person = the category named 'person',
    else id 1); files without categories are taken as all-person."""
    cats = [c for c in data.get("categories") or [] if isinstance(c, dict)]
    if not cats:
        return data
    person = {c.get("id") for c in cats if str(c.get("name", "")).lower() == "person"} or {1}
    anns = [a for a in data["annotations"] if not isinstance(a, dict) or a.get("category_id", 1) in person]
    if len(anns) == len(data["annotations"]) and all(c.get("id") in person for c in cats):
        return data
    return dict(data, annotations=anns, categories=[c for c in cats if c.get("id") in person])


def _check_names(ann_file: Path, data: dict, schema: KeypointSchema) -> None:
    """Warn when the file names its keypoints differently from the schema (flip pairs and OKS sigmas follow it)."""
    import warnings

    for cat in data.get("categories") or []:
        names = cat.get("keypoints") if isinstance(cat, dict) else None
        if isinstance(names, list) and len(names) == schema.num_keypoints and list(names) != list(schema.names):
            diff = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(names, schema.names)) if a != b]
            warnings.warn(f"{ann_file}: keypoint names differ from the {schema.name!r} schema ({'; '.join(diff[:3])}"
                          f"{'; ...' if len(diff) > 3 else ''}); flip pairs and OKS sigmas follow the schema",
                          stacklevel=3)
            return


def load_detections(det_json: str | Path, *, category_id: int | None = 1,
                    min_score: float = 0.0) -> dict[int, list[tuple[np.ndarray, float]]]:
    """Read a COCO detection results file (list of {image_id, category_id, bbox xywh, score}).

    Returns ``image_id -> [(box_xyxy (4,) float32, score), ...]`` sorted by descending score, keeping
    ``category_id`` (None keeps all) and scores >= ``min_score``.
    """
    dets = read_json(det_json, "COCO detection file")
    if not isinstance(dets, list):
        raise DataError(f"{det_json}: expected a list of detections; received {type(dets).__name__}")
    out: dict[int, list[tuple[np.ndarray, float]]] = {}
    for i, d in enumerate(dets):
        if not isinstance(d, dict) or not {"image_id", "bbox", "score"} <= set(d) or not isinstance(
                d["bbox"], list) or len(d["bbox"]) != 4:
            raise DataError(f"{det_json}: entry {i} is not a detection (expected image_id, bbox [x, y, w, h], "
                            f"score); received {d!r:.120}")
        image_id, category = d["image_id"], d.get("category_id", 1)
        if not (all(is_number(v) for v in [*d["bbox"], d["score"]]) and _is_int(image_id) and _is_int(category)):
            raise DataError(f"{det_json}: entry {i} needs an integer image_id and category_id and finite numbers "
                            f"for bbox and score; received {d!r:.120}")
        (x, y, w, h), score = (float(v) for v in d["bbox"]), float(d["score"])
        if (category_id is not None and category != category_id) or score < min_score:
            continue
        box = np.array([x, y, x + w, y + h], dtype=np.float32)
        out.setdefault(image_id, []).append((box, score))
    for lst in out.values():
        lst.sort(key=lambda t: -t[1])
    return out
