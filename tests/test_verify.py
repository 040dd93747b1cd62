"""Golden samples and ``edgepose verify``: a bundle checks itself, and says which stage deviates."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

import edgepose
import edgepose.golden
from edgepose.bundle import read_bundle, write_manifest
from edgepose.cli import main
from edgepose.errors import BundleError, VerificationFailed
from edgepose.golden import GOLDEN_FILE, MAX_BYTES
from edgepose.models import create
from edgepose.verify import unverified_warning, verify_runtime

pytestmark = pytest.mark.onnxruntime


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("verify") / "ort"
    model = create("simplebaseline-mnv2s-edge", weights="default")
    edgepose.export(model, target="onnx", out=out, samples=shared_data / "coco-mini" / "test_coco.json", log=None)
    return out


def _report(path):
    with edgepose.load(path) as rt:
        return verify_runtime(rt, read_bundle(path))


def test_bundle_carries_golden_samples_within_budget(bundle_dir):
    m = read_bundle(bundle_dir).manifest
    g = m["golden"]
    assert g["file"] == GOLDEN_FILE and GOLDEN_FILE in m["files"]  # hashed like the model: tampering is caught
    assert 0 < g["bytes"] <= MAX_BYTES and len(g["samples"]) == 3
    assert g["tolerances"]["px"] == 0.5 and g["reference_backend"] == "onnxruntime"


def test_verify_passes_where_exported(bundle_dir):
    report = _report(bundle_dir)
    assert report.passed, report.lines()
    assert [s.name for s in report.stages] == ["preprocess", "inference", "decode", "end-to-end"]
    assert not any(s.deviates for s in report.stages)
    assert report.stage("decode").numbers["joints"] > 0  # something was compared


def _grid_shift(warp):
    """Another OpenCV build rounding the warp differently: every sample position moved by half a step of OpenCV's
    1/32-pixel interpolation grid, so some snap to the neighbouring step."""
    return lambda img, m, size, **kw: warp(img, np.asarray(m, np.float64) + [[0, 0, 1 / 64], [0, 0, 1 / 64]], size,
                                           **kw)


def _nearest(warp):
    """A build (or a port) that crops with nearest-neighbour instead of bilinear interpolation."""
    return lambda img, m, size, flags=cv2.INTER_LINEAR, **kw: warp(img, m, size, flags=cv2.INTER_NEAREST, **kw)


@pytest.mark.parametrize("other_build", [_grid_shift, _nearest])
def test_other_interpolation_is_a_preprocessing_deviation(bundle_dir, monkeypatch, other_build):
    monkeypatch.setattr(cv2, "warpAffine", other_build(cv2.warpAffine))
    report = _report(bundle_dir)
    pre = report.stage("preprocess")
    assert pre.deviates and pre.numbers["differ"] > 0 and pre.numbers["max_levels"] >= 1
    assert f"{pre.numbers['differ']:,} of {pre.numbers['values']:,} values differ" in pre.summary
    assert not pre.passed  # both move far more than 1 % of the values
    assert not report.stage("inference").deviates  # the model ran on the stored crops: unaffected


def test_perturbed_weight_is_an_inference_deviation(bundle_dir, tmp_path):
    import onnx
    from onnx import numpy_helper

    copy = tmp_path / "b"
    shutil.copytree(bundle_dir, copy)
    model = onnx.load(copy / "model.onnx")
    init = next(t for t in model.graph.initializer if t.dims and len(t.dims) == 4)
    w = numpy_helper.to_array(init).copy()
    w.flat[0] += 5.0 * (np.abs(w).max() + 1.0)
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, copy / "model.onnx")
    write_manifest(copy, read_bundle(copy, verify=False).manifest)  # re-hash, as a re-signed bundle would be
    report = _report(copy)
    assert not report.passed and not report.stage("inference").passed
    assert report.stage("preprocess").passed and not report.stage("preprocess").deviates
    with pytest.raises(VerificationFailed, match="inference"):
        edgepose.load(copy, verify=True)


def test_cli_verify_records_the_device_and_bench_stops_warning(bundle_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    bundle = read_bundle(bundle_dir)
    assert "never been verified" in unverified_warning(bundle, "onnxruntime")
    assert main(["verify", str(bundle_dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and len(doc["stages"]) == 4
    assert unverified_warning(bundle, "onnxruntime") is None
    assert main(["verify", str(bundle_dir)]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_run_warns_once_until_the_bundle_is_verified_here(bundle_dir, shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    video = next((shared_data / "posetrack18-mini" / "videos").rglob("*.mp4"))
    args = ["run", str(bundle_dir), "--source", str(video), "--max-frames", "2", "--json", str(tmp_path / "p.jsonl")]
    assert main(args) == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "never been verified" in ln]
    assert len(warned) == 1 and warned[0].startswith("warning: ") and f"edgepose verify {bundle_dir}" in warned[0]
    assert main(["verify", str(bundle_dir)]) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "verified" not in capsys.readouterr().err


def test_verify_refuses_a_bundle_without_golden_samples(bundle_dir, tmp_path, capsys):
    copy = tmp_path / "old"
    shutil.copytree(bundle_dir, copy)
    (copy / GOLDEN_FILE).unlink()
    manifest = read_bundle(copy, verify=False).manifest
    manifest.pop("golden")
    write_manifest(copy, manifest)
    assert main(["verify", str(copy)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no golden samples" in err[0] and "re-export" in err[0]
    with pytest.raises(BundleError, match="no golden samples"):
        edgepose.load(copy, verify=True)


def test_native_crash_while_loading_shows_the_python_stack_and_the_held_lines(bundle_dir):
    """A backend that segfaults inside model loading (under the held stderr, as TFLite's loads are): the
    command prints the Python traceback naming the call site and what the library printed before dying."""
    import subprocess
    import sys

    script = f"""
import ctypes, os, sys
import edgepose.runtimes.onnxruntime as ort
from edgepose.utils.native_stderr import native_stderr_held

def crashing_load(self):
    with native_stderr_held():
        os.write(2, b"libbackend: cannot map the weights\\n")
        ctypes.string_at(0)

ort.OnnxRuntime.load_impl = crashing_load
from edgepose.cli import main
sys.exit(main(["verify", {str(bundle_dir)!r}]))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Segmentation fault" in proc.stderr or "Fatal Python error" in proc.stderr
    assert "in crashing_load" in proc.stderr  # the call site, from faulthandler
    assert "libbackend: cannot map the weights" in proc.stderr  # replayed by the keeper after the crash


# fp32 on every target: tests/export/test_conformance.py; INT8 on ONNX Runtime, TensorRT's ONNX and TFLite:
# tests/calibration/test_int8_export.py and tests/quantization/test_tflite_int8.py. The other precisions here.
@pytest.mark.slow
@pytest.mark.parametrize("target, precision", [pytest.param("openvino", "int8", marks=pytest.mark.openvino),
                                               pytest.param("openvino", "fp16", marks=pytest.mark.openvino),
                                               pytest.param("tflite", "fp16", marks=pytest.mark.tflite)])
def test_verify_passes_where_exported_for_each_precision(target, precision, tmp_path):
    model = create("simplebaseline-mnv2s-edge", weights="default")
    calib = "synthetic:16" if precision == "int8" else None
    b = edgepose.export(model, target=target, precision=precision, calib=calib, val="synthetic-val:20",
                        allow_accuracy_drop=True, out=tmp_path / "b", log=None)
    assert b.manifest["golden"]["tolerances"] == edgepose.golden.tolerances_for(precision)
    report = _report(b.path)
    assert report.passed, report.lines()


def test_keypoint_gap_pairs_bottom_up_people_by_position_not_order():
    from edgepose.verify import _keypoint_gap

    rng = np.random.default_rng(0)
    a = np.concatenate([rng.random((3, 17, 2)) * 200, np.full((3, 17, 1), 0.9)], axis=-1)
    swapped = a[[2, 0, 1]]
    assert _keypoint_gap(a, swapped, 0.3, match=True) == (0.0, 51, 0)
    assert _keypoint_gap(a, swapped, 0.3)[0] > 10  # top-down: person i is box i
    moved = a.copy()
    moved[1, 4, :2] += [3.0, 4.0]
    assert _keypoint_gap(a, moved, 0.3, scale=[1.0, 2.0, 1.0])[0] == pytest.approx(2.5)  # image px / crop scale
    assert _keypoint_gap(a, a[:2], 0.3, match=True) == (np.inf, 0, 1)  # a person not found


def test_outputs_of_another_shape_fail_inference_and_skip_decoding(bundle_dir, tmp_path):
    copy = tmp_path / "shape"
    shutil.copytree(bundle_dir, copy)
    manifest = read_bundle(copy, verify=False).manifest
    manifest["golden"]["samples"][1]["outputs"][0]["shape"][1] += 1  # as if exported from another model
    write_manifest(copy, manifest)
    report = _report(copy)
    assert "sample 1: outputs of shapes" in report.stage("inference").summary and not report.stage("inference").passed
    assert report.stage("decode").summary.startswith("not run") and not report.stage("decode").passed
    assert report.stage("end-to-end").numbers["joints"] > 0  # the pipeline itself still ran
