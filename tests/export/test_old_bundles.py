"""Bundles written before the heads registry (edgepose at c8c33dc, manifest schema 1) still load, decode through
the registered heads and reproduce the keypoints that older code recorded in their golden samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgepose
from edgepose.bundle import read_bundle
from edgepose.verify import verify_runtime

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles-c8c33dc"
BUNDLES = sorted(p.name for p in FIXTURES.iterdir() if (p / "manifest.json").is_file())


def test_fixtures_are_there():
    assert BUNDLES == ["centernet-onnx", "heatmap-onnx"]


@pytest.mark.parametrize("name", BUNDLES)
def test_old_bundle_loads_and_reproduces_its_golden_keypoints(name):
    manifest = json.loads((FIXTURES / name / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["edgepose_version"] == "0.1.0"
    with edgepose.load(FIXTURES / name, threads=1) as rt:
        assert rt.spec.head.name == manifest["spec"]["kind"]
        report = verify_runtime(rt, read_bundle(FIXTURES / name))
        # the end-to-end stage compares this code's keypoints with the ones the old code stored, per image; the
        # preprocessing is this code's alone (bit for bit), the network's outputs are ONNX Runtime's kernels for
        # this CPU (bit for bit on the AVX2-only hosts; 2e-9 to 6e-8 of the range off on an AVX-512 VNNI one)
        stages = {s.name: s for s in report.stages}
        assert report.passed and not stages["preprocess"].deviates, report.lines()
        assert stages["inference"].numbers["relative"] <= 1e-6, report.lines()
        assert stages["end-to-end"].numbers["max_px"] <= 1e-3 and not stages["end-to-end"].numbers["missing_people"]
        image = np.full((96, 80, 3), 120, np.uint8)
        poses = rt(image) if rt.spec.bottom_up else rt(image, boxes=np.array([[4, 4, 76, 92]], np.float32))
        assert poses.keypoints.shape[1:] == (17, 3) and np.isfinite(poses.keypoints).all()
