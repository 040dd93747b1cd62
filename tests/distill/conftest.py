"""Short real clips for the distillation tests: coco-mini photos repeated as video frames."""

from __future__ import annotations

import cv2
import pytest


def write_clip(photo_path, out_path, frames: int = 3):
    """A ``frames``-frame MJPG .avi of one photo (OpenCV writes it without extra codecs)."""
    image = cv2.imread(str(photo_path))
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (image.shape[1], image.shape[0]))
    for _ in range(frames):
        writer.write(image)
    writer.release()
    return out_path


@pytest.fixture(scope="session")
def clip(shared_data, tmp_path_factory):
    """Three frames of 000000196141.jpg (four people with COCO keypoint labels)."""
    return write_clip(shared_data / "coco-mini" / "000000196141.jpg", tmp_path_factory.mktemp("clip") / "photo.avi")


@pytest.fixture(scope="session")
def other_clip(shared_data, tmp_path_factory):
    """Two frames of 000000197388.jpg (five labelled people): held-out footage for the CLI tests."""
    return write_clip(shared_data / "coco-mini" / "000000197388.jpg", tmp_path_factory.mktemp("clip2") / "other.avi",
                      frames=2)
