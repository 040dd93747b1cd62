"""MPII list-format reader on mpii-mini."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.data.mpii import MpiiKeypoints
from edgepose.errors import DataError
from edgepose.keypoints import MPII16

MPII_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mpii-mini"
ANN = MPII_DIR / "test_mpii.json"


@pytest.fixture(scope="module")
def raw() -> list:
    return json.loads(ANN.read_text())


def test_reads_five_people_on_five_images(raw: list) -> None:
    ds = MpiiKeypoints(ANN)
    insts = ds.instances()
    assert len(insts) == len(raw) == 5 and len(ds) == 5
    assert sorted(ds.image_files) == sorted(e["image"] for e in raw)
    for inst in insts:
        img = ds.load_image(inst.image_id)
        assert img.dtype == np.uint8 and img.ndim == 3
        assert ds.image_files[inst.image_id] == inst.image_file
        assert np.array_equal(img, ds.load_image(inst.image_file))


def test_keypoints_are_zero_based_in_mpii16_order(raw: list) -> None:
    insts = MpiiKeypoints(ANN).instances()
    for inst, e in zip(insts, raw):
        assert inst.keypoints.shape == (16, 3) and inst.keypoints.dtype == np.float32
        vis = np.asarray(e["joints_vis"]) > 0
        np.testing.assert_allclose(inst.keypoints[vis, :2], np.asarray(e["joints"])[vis] - 1.0)
        assert np.all(inst.keypoints[vis, 2] == 2)
        assert np.all(inst.keypoints[~vis] == 0)
    assert sum(int((inst.keypoints[:, 2] == 0).sum()) for inst in insts) == 4  # two images lack both ankles


def test_box_and_head_size(raw: list) -> None:
    for inst, e in zip(MpiiKeypoints(ANN).instances(), raw):
        x, y, w, h = inst.bbox_xywh
        assert w == pytest.approx(e["scale"] * 200) and h == pytest.approx(w)
        vis = inst.keypoints[:, 2] > 0
        kx, ky = inst.keypoints[vis, 0], inst.keypoints[vis, 1]
        assert np.all((kx >= x) & (kx <= x + w) & (ky >= y) & (ky <= y + h))
        top = np.asarray(e["joints"][MPII16.index("head_top")])
        neck = np.asarray(e["joints"][MPII16.index("upper_neck")])
        assert inst.head_size == pytest.approx(0.6 * np.sqrt(2) * np.linalg.norm(top - neck), rel=1e-5)


def test_errors(tmp_path: Path, raw: list) -> None:
    bad = json.loads(json.dumps(raw))
    bad[2]["joints"] = bad[2]["joints"][:15]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"entry 2 has joints \(15, 2\).*expected \(16, 2\)"):
        MpiiKeypoints(p)
    p.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="image file not found"):
        MpiiKeypoints(p).load_image(0)
    with pytest.raises(DataError, match="not found"):
        MpiiKeypoints(tmp_path / "missing.json")
