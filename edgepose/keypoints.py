"""Keypoint schemas: names, skeleton edges, left/right flip pairs and COCO OKS sigmas.

A schema is the contract between a model's K output channels, its codec, the data readers,
augmentation (flip swaps the paired joints) and evaluation (OKS needs one sigma per joint).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepose.errors import suggest


@dataclass(frozen=True)
class KeypointSchema:
    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]  # 0-based joint index pairs
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]  # OKS per-keypoint sigmas (COCO convention)

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def flip_index(self) -> list[int]:
        """Permutation that maps joint i to its mirror joint (identity for centre joints)."""
        perm = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def index(self, joint: str) -> int:
        if joint not in self.names:
            raise suggest(joint, self.names, f"{self.name} joint")
        return self.names.index(joint)


COCO17 = KeypointSchema(
    name="coco",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # COCO keypoint evaluation sigmas (cocoapi: .26 .25 .25 .35 .35 .79 .79 .72 .72 .62 .62
    # 1.07 1.07 .87 .87 .89 .89, divided by 10).
    sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
            0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
)

MPII16 = KeypointSchema(
    name="mpii",
    names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    ),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    # MPII has no OKS sigmas of its own; the COCO values of the matching joints (0.089 for the
    # centre joints and the head top) make OKS usable as a secondary metric.
    sigmas=(0.089, 0.087, 0.107, 0.107, 0.087, 0.089, 0.107, 0.079, 0.079, 0.089,
            0.062, 0.072, 0.079, 0.079, 0.072, 0.062),
)

SCHEMAS: dict[str, KeypointSchema] = {"coco": COCO17, "mpii": MPII16}


def get_schema(name: str | KeypointSchema) -> KeypointSchema:
    """Look a schema up by name ('coco', 'mpii'); a schema object passes through."""
    if isinstance(name, KeypointSchema):
        return name
    key = str(name).lower()
    if key not in SCHEMAS:
        raise suggest(str(name), SCHEMAS, "keypoint schema")
    return SCHEMAS[key]
