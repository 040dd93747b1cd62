"""The public Runtime API refuses bad input with one-line errors, and a missing backend names its extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import edgepose
from edgepose.cli import main
from edgepose.errors import BackendUnavailable, EdgeposeError, InputError


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from edgepose.models import create

    out = tmp_path_factory.mktemp("rt") / "b"
    edgepose.export(create("simplebaseline-mnv2s-edge", weights="default"), target="onnx", out=out, log=None)
    return out


@pytest.mark.parametrize("image, match", [
    (np.zeros((64, 48), np.uint8), "grayscale"),
    (np.zeros((64, 48, 1), np.uint8), "grayscale"),
    (np.zeros((64, 48, 4), np.uint8), "COLOR_BGRA2BGR"),
    (np.zeros((64, 48, 3), np.uint16), "dtype is uint16"),
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    ([[0, 0, 0]], "numpy array"),
])
def test_bad_images(bundle, image, match):
    with edgepose.load(bundle) as rt, pytest.raises(InputError, match=match):
        rt(image)


@pytest.mark.parametrize("boxes, match", [
    ([[500, 500, 600, 600]], "outside the 48x64 image"),
    ([[10, 10, 5, 20]], "no area"),
    ([[0, 0, 10]], "must be \\(N, 4\\)"),
    ([[0, 0, np.nan, 10]], "NaN"),
    ("abc", "must be numbers"),
    ([[0, 0, 1e30, 1e30]], "over 100x the 48x64 image"),
    ([[0, 0, 10, 10, np.inf]], "NaN or infinite"),
])
def test_bad_boxes(bundle, boxes, match):
    with edgepose.load(bundle) as rt, pytest.raises(InputError, match=match):
        rt(np.zeros((64, 48, 3), np.uint8), boxes=boxes)


def test_partly_outside_box_is_fine_and_maps_back(bundle):
    with edgepose.load(bundle) as rt:
        poses = rt(np.full((64, 48, 3), 90, np.uint8), boxes=[[-10, -10, 30, 40]])
        scored = rt(np.full((64, 48, 3), 90, np.uint8), boxes=np.array([[-10, -10, 30, 40, 0.5]], np.float32))
    assert poses.keypoints.shape == (1, 17, 3) and np.isfinite(poses.keypoints).all()
    np.testing.assert_allclose(scored.scores, poses.scores * 0.5, rtol=1e-6)


@pytest.mark.parametrize("boxes", [[], np.zeros((0,)), np.zeros((0, 4)), np.zeros((0, 5))])
def test_no_boxes_is_no_people(bundle, boxes):
    """A detector that found nobody hands over an empty list: no people, not an error."""
    with edgepose.load(bundle) as rt:
        poses = rt(np.zeros((64, 48, 3), np.uint8), boxes=boxes)
    assert len(poses) == 0 and poses.keypoints.shape == (0, 17, 3)


def test_box_scores_as_lists_and_score_threshold(bundle):
    image = np.full((64, 48, 3), 90, np.uint8)
    with edgepose.load(bundle) as rt:
        as_array = rt(image, boxes=np.array([[-10, -10, 30, 40, 0.5], [0, 0, 48, 64, 1.0]], np.float32))
        as_list = rt(image, boxes=[[-10, -10, 30, 40, 0.5], [0, 0, 48, 64, 1.0]])
        cut = float(as_array.scores.mean())
        kept = rt(image, boxes=[[-10, -10, 30, 40, 0.5], [0, 0, 48, 64, 1.0]], score_threshold=cut)
        with pytest.raises(InputError, match="finite number"):
            rt(image, score_threshold=float("nan"))
    np.testing.assert_array_equal(as_list.keypoints, as_array.keypoints)
    np.testing.assert_array_equal(kept.scores, as_array.scores[as_array.scores >= cut])
    assert len(kept) == 1  # the two people score differently (box scores 0.5 and 1.0)


def test_empty_batch_on_a_fixed_batch_graph(bundle):
    with edgepose.load(bundle) as rt:
        (out,) = rt.infer(np.zeros((0, 3, 128, 96), np.float32))
        (one,) = rt.infer(np.zeros((1, 3, 128, 96), np.float32))
    assert out.shape == (0, *one.shape[1:])


def test_infer_checks_shape_and_dtype(bundle):
    with edgepose.load(bundle) as rt:
        with pytest.raises(InputError, match="expected \\(1, 3, 128, 96\\)"):
            rt.infer(np.zeros((1, 3, 64, 64), np.float32))
        with pytest.raises(InputError, match="dtype float64, expected float32"):
            rt.infer(np.zeros((1, 3, 128, 96)))
    with pytest.raises(EdgeposeError, match="before load"):
        rt.infer(np.zeros((1, 3, 128, 96), np.float32))


def test_missing_backend_names_the_extra(bundle, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install 'edgepose\[onnxruntime\]'"):
        edgepose.load(bundle)
    assert main(["eval", "simplebaseline-mnv2s-edge", "--data", "synthetic-val:2"]) == 0  # torch path unaffected


def test_tensorrt_bundle_here_says_why(tmp_path):
    from edgepose.models import create
    from edgepose.runtimes.tensorrt import is_available

    b = edgepose.export(create("simplebaseline-mnv2s-edge"), target="tensorrt", out=tmp_path / "trt", log=None)
    assert b.manifest["backend"] == "tensorrt" and (tmp_path / "trt" / "model.onnx").is_file()
    if is_available():
        pytest.skip("TensorRT is installed here; the unavailable path cannot be exercised")
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        edgepose.load(tmp_path / "trt")


def test_export_all_makes_one_bundle_per_target(tmp_path, capsys):
    from edgepose.bundle import read_bundle

    assert main(["export", "--model", "simplebaseline-mnv2s-edge", "--target", "all", "--precision", "fp32",
                 "--out", str(tmp_path / "all")]) == 0
    dirs = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert dirs == ["onnx", "openvino", "tensorrt", "tflite"]
    for name in ["onnx", "openvino", "tflite"]:
        with edgepose.load(tmp_path / "all" / name) as rt:
            assert rt.backend == read_bundle(tmp_path / "all" / name).backend
            assert len(rt(np.full((120, 80, 3), 60, np.uint8))) == 1


def test_eval_scores_a_bundle_like_its_source_model(bundle, capsys):
    """`edgepose eval BUNDLE` (DESIGN: MODEL_OR_BUNDLE) runs the deployed model; an fp32 ONNX bundle scores as
    its PyTorch source does."""
    import json

    argv = ["--data", "synthetic-val:6", "--json", "--no-progress"]
    assert main(["eval", str(bundle), "--threads", "1", *argv]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert main(["eval", "simplebaseline-mnv2s-edge", *argv]) == 0
    source = json.loads(capsys.readouterr().out)
    assert deployed["num_images"] == 6 and deployed["AP"] > 0.1
    assert abs(deployed["AP"] - source["AP"]) < 1e-3
    assert main(["eval", str(bundle), "--weights", "default", *argv]) != 0
    assert "whose weights are fixed" in capsys.readouterr().err
