"""torch Datasets that turn a COCO-format keypoint dataset into network inputs and training targets.

The geometric transforms and codecs are the same numpy code the runtimes use, so training and
deployment see identical preprocessing.
"""

from __future__ import annotations

import numpy as np
import torch

from edgepose.data.augment import BottomUpTransform, TopDownTransform
from edgepose.data.coco import CocoKeypoints
from edgepose.data.transforms import normalize
from edgepose.errors import ConfigError, DataError
from edgepose.keypoints import get_schema


def _rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class TopDownDataset(torch.utils.data.Dataset):
    """One sample per annotated person: affine crop from the GT box → heatmap targets."""

    def __init__(self, coco: CocoKeypoints, meta, *, train: bool = True, seed: int = 0, flip_prob: float = 0.5,
                 real=None):
        from edgepose.codecs import codec_from_dict

        self.coco, self.meta, self.train, self.seed, self.epoch = coco, meta, train, seed, 0
        self.flip_prob, self.real = flip_prob, real  # real: a RealAugment (edgepose.data.augment_real) or None
        self.schema = get_schema(meta.keypoints)
        self.instances = coco.instances(min_keypoints=1)
        if not self.instances:
            raise DataError(f"no annotated people with keypoints in {coco.ann_file}; expected at least one")
        self.codec = codec_from_dict(meta.codec)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, i: int):
        inst = self.instances[i]
        image = self.coco.load_image(inst.image_id)
        x, y, w, h = inst.bbox_xywh
        tf = TopDownTransform(self.meta.input_size, train=self.train, rng=_rng(self.seed, self.epoch, i),
                              schema=self.schema, flip_prob=self.flip_prob, real=self.real)
        crop, kps, _ = tf(image, np.array([x, y, x + w, y + h], np.float32), inst.keypoints)
        if self.train and self.real is not None and self.real.paste_prob > 0:
            crop = self._paste(crop, i)
        heatmaps, weight = self.codec.encode(kps)
        tensor = normalize(crop, self.meta.mean, self.meta.std)
        return torch.from_numpy(tensor), torch.from_numpy(heatmaps), torch.from_numpy(weight)

    def _paste(self, crop: np.ndarray, i: int) -> np.ndarray:
        """With ``real.paste_prob``, another sample's person (its box from its own frame, mirrored half the time)
        pasted beside the centred one (:func:`edgepose.data.augment_real.paste_person`); the targets stay."""
        from edgepose.data.augment_real import paste_person

        rng = np.random.default_rng([self.seed, self.epoch, i, 1])
        if len(self.instances) < 2 or rng.random() >= self.real.paste_prob:
            return crop
        j = int(rng.integers(len(self.instances) - 1))
        other = self.instances[j + (j >= i)]
        image = self.coco.load_image(other.image_id)
        x, y, w, h = other.bbox_xywh
        x0, y0 = max(0, int(x)), max(0, int(y))
        x1, y1 = min(image.shape[1], int(np.ceil(x + w))), min(image.shape[0], int(np.ceil(y + h)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return crop
        person = image[y0:y1, x0:x1]
        return paste_person(crop, np.ascontiguousarray(person[:, ::-1]) if rng.random() < 0.5 else person, rng)


class BottomUpDataset(torch.utils.data.Dataset):
    """One sample per image: whole-image augmentation → CenterNet targets for every person."""

    def __init__(self, coco: CocoKeypoints, meta, *, train: bool = True, seed: int = 0, flip_prob: float = 0.5,
                 real=None):
        from edgepose.codecs import codec_from_dict

        if real is not None and real.paste_prob > 0:
            raise ConfigError(f"paste_prob {real.paste_prob}: pasting a person is for top-down crops, {meta.name} is "
                              "bottom-up (a pasted person would need labels); expected paste_prob 0")
        self.coco, self.meta, self.train, self.seed, self.epoch = coco, meta, train, seed, 0
        self.flip_prob, self.real = flip_prob, real  # real: a RealAugment (edgepose.data.augment_real) or None
        self.schema = get_schema(meta.keypoints)
        self.codec = codec_from_dict(meta.codec)
        self.image_ids = [i for i in coco.image_ids if coco.annotations_for(i)]
        if not self.image_ids:
            raise DataError(f"no images with people in {coco.ann_file}; expected at least one")

    def __len__(self) -> int:
        return len(self.image_ids)

    def _people(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        k = self.schema.num_keypoints
        kps, boxes = [], []
        for ann in self.coco.annotations_for(image_id):
            if ann.get("iscrowd", 0):
                continue
            x, y, w, h = ann["bbox"]
            kps.append(np.asarray(ann.get("keypoints", [0] * 3 * k), np.float32).reshape(k, 3))
            boxes.append([x, y, x + w, y + h])
        return (np.asarray(kps, np.float32).reshape(-1, k, 3), np.asarray(boxes, np.float32).reshape(-1, 4))

    def __getitem__(self, i: int):
        image_id = self.image_ids[i]
        image = self.coco.load_image(image_id)
        kps, boxes = self._people(image_id)
        tf = BottomUpTransform(self.meta.input_size, train=self.train, rng=_rng(self.seed, self.epoch, i),
                               schema=self.schema, flip_prob=self.flip_prob, real=self.real)
        img, kps, boxes, _ = tf(image, kps, boxes)
        targets = self.codec.encode(kps, boxes)
        tensor = normalize(img, self.meta.mean, self.meta.std)
        return torch.from_numpy(tensor), {k: torch.from_numpy(v) for k, v in targets.items()}
