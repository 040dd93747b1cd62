"""INT8 export end to end on the trained default top-down model: accuracy gate, determinism, mixed
precision, TensorRT Q/DQ, and bad input on the command line (clear error, nothing written)."""

from __future__ import annotations

import json
import textwrap
import warnings

import numpy as np
import pytest

import edgepose
from edgepose.bundle import read_bundle
from edgepose.cli import main
from edgepose.errors import ConfigError
from edgepose.models import create
from edgepose.testing import error_line

MODEL = "simplebaseline-mnv2s-edge"
CALIB, VAL = "synthetic:48", "synthetic-val:40"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _error_line(capsys) -> str:
    return error_line(capsys.readouterr().err)


def _nothing_written(folder) -> None:
    assert [p.name for p in folder.iterdir() if p.name != "model.py"] == []


@pytest.fixture(scope="module")
def model():
    return create(MODEL, weights="default")


@pytest.fixture
def sensitive_model_file(tmp_path):
    """The default model with heatmap channel 0 scaled x1000: argmax unchanged in float, but one per-tensor
    INT8 scale on the heatmap output flattens the 16 other channels."""
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(f"""
        import torch
        from edgepose.models import create

        def factory():
            m = create({MODEL!r}, weights="default")
            with torch.no_grad():
                m.final_layer.weight[0] *= 1000.0
                m.final_layer.bias[0] *= 1000.0
            return m
    """))
    return f"{path}:factory"


def test_int8_without_calib_is_a_clear_error(tmp_path, capsys):
    code = main(["export", "--model", MODEL, "--target", "onnx", "--precision", "int8", "--out", str(tmp_path / "b")])
    assert code != 0 and "--precision int8 needs --calib" in _error_line(capsys)
    _nothing_written(tmp_path)
    with pytest.raises(ConfigError, match="needs calibration data"):
        edgepose.export(create(MODEL, input_size=(32, 32)), target="onnx", precision="int8", out=tmp_path / "c")
    _nothing_written(tmp_path)


@pytest.mark.parametrize("source, match", [("empty", "no usable samples"), ("clip.mp4", "cannot open video")])
def test_bad_calibration_source_writes_nothing(tmp_path, capsys, source, match):
    src = tmp_path / "src"
    src.mkdir()
    if source.endswith(".mp4"):
        (src / source).write_bytes(b"\x00" * 128)
    out = tmp_path / "out"
    code = main(["export", "--model", MODEL, "--target", "onnx", "--precision", "int8", "--calib",
                 str(src / source if source != "empty" else src), "--out", str(out)])
    assert code != 0 and match in _error_line(capsys)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["src"]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # ORT divided 0 by 0 on a decoder tensor it never quantizes
def test_default_model_int8_passes_the_gate_deterministically(model, tmp_path):
    from edgepose.calibration.dataset import CalibrationSet
    from edgepose.export.onnx import export_onnx
    from edgepose.export.targets.onnx import quantize_qdq

    # limit 2: ONNX Runtime's INT8 kernels differ by CPU (VNNI or not); at 40 images the drop was 0.4 on an AMX host
    # and 1.00 (95 % interval -1.1 to 3.3) on an AVX2-only one. This test is about determinism, not the limit.
    b = edgepose.export(model, target="onnx", precision="int8", calib=CALIB, val=VAL, out=tmp_path / "a", log=None,
                        max_ap_drop=2.0)
    # the same calibration again, from scratch (new ONNX export, calibration set, workspace) → identical bytes
    again = CalibrationSet.from_source(CALIB, b.spec(), progress=False)
    (tmp_path / "ws").mkdir()
    onnx_exp = export_onnx(model, tmp_path / "ws" / "model.onnx", decode=b.manifest["spec"]["decode"])
    quantize_qdq(onnx_exp.path, tmp_path / "again.onnx", again, input_name="input", workspace=tmp_path / "ws")
    assert (tmp_path / "again.onnx").read_bytes() == (b.path / "model.onnx").read_bytes()
    m = read_bundle(b.path).manifest
    with edgepose.load(b.path, verify=True):  # its golden samples reproduce here (VerificationFailed otherwise)
        pass
    acc, quant = m["accuracy"], m["quantization"]
    assert acc["passed"] and acc["ap_drop"] <= 2.0 and acc["ap_reference"] > 5.0 and acc["gate"] == "labelled"
    assert acc["num_images"] == 40 and acc["val"] == VAL and len(acc["per_keypoint_error_px"]) > 10
    assert acc["mean_keypoint_error_px"] < 5.0
    lo, hi = acc["ap_drop_interval95"]  # the drop's spread over resampled validation images
    assert lo < hi and hi - lo < 10.0
    assert quant["format"] == "QDQ" and quant["per_channel"] and quant["kept_float"] == []
    assert quant["calibration"]["size"] == 48 and len(quant["calibration"]["digest"]) == 64
    ranges = next((tmp_path / "ws").glob("ranges-*.json")).read_text()
    assert '"/decoder/' not in ranges and "/model/" in ranges  # the float decoder's tensors get no INT8 range
    assert "parity" not in m  # the accuracy gate replaces the fp32 parity gate
    with edgepose.load(b.path) as rt:
        poses = rt(np.full((256, 192, 3), 127, np.uint8))
    assert poses.keypoints.shape == (1, 17, 3)


@pytest.mark.slow
def test_gate_failure_writes_nothing_and_auto_mixed_fixes_it(sensitive_model_file, tmp_path, capsys):
    args = ["export", "--model", sensitive_model_file, "--target", "onnx", "--precision", "int8", "--calib", CALIB,
            "--val", VAL]
    code = main([*args, "--out", str(tmp_path / "plain")])
    line = _error_line(capsys)
    assert code != 0 and "accuracy gate failed, bundle not written" in line and "--auto-mixed" in line
    _nothing_written(tmp_path)

    code = main([*args, "--auto-mixed", "--out", str(tmp_path / "mixed")])
    assert code == 0, capsys.readouterr().err
    m = read_bundle(tmp_path / "mixed").manifest
    kept = m["quantization"]["kept_float"]
    # the sabotaged layer is the most sensitive one and goes float first; how many more the gate needs depends on
    # the CPU's INT8 kernels and the scoring (1 on an AMX host; on an AVX2-only one 4, and 19 since weak joints'
    # scores are lowered by peak_margin: the plain model's drop on synthetic-val:100 is 1.4 there, 1.8 without it)
    assert kept[0] == "/model/final_layer/Conv" and len(kept) <= 28
    assert m["accuracy"]["passed"] and m["accuracy"]["ap_drop"] <= 1.0
    steps = m["quantization"]["mixed_precision"]["steps"]
    assert not steps[0]["passed"] and steps[-1]["passed"] and steps[-1]["float_layers"] == len(kept)


def test_allow_accuracy_drop_writes_the_failing_bundle(sensitive_model_file, tmp_path, capsys):
    code = main(["export", "--model", sensitive_model_file, "--target", "onnx", "--precision", "int8", "--calib",
                 "synthetic:16", "--val", "synthetic-val:20", "--allow-accuracy-drop", "--out", str(tmp_path / "b")])
    assert code == 0
    assert "GATE FAILED, written because of --allow-accuracy-drop" in capsys.readouterr().out
    acc = json.loads((tmp_path / "b" / "manifest.json").read_text())["accuracy"]
    assert not acc["passed"] and acc["ap_drop"] > 1.0 and acc["overridden"] is True
    with pytest.warns(UserWarning, match="failed its accuracy gate"):
        edgepose.load(tmp_path / "b").close()
    assert main(["info", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    lo, hi = acc["ap_drop_interval95"]
    assert "accuracy gate: FAILED, written with --allow-accuracy-drop" in out and f"95 % interval {lo} to {hi}" in out


def test_tensorrt_int8_carries_a_symmetric_qdq_onnx(model, tmp_path):
    from edgepose.export.targets.tensorrt import validate_qdq

    b = edgepose.export(model, target="tensorrt", precision="int8", calib=CALIB, val="synthetic-val:20",
                        out=tmp_path / "trt", log=None)
    report = validate_qdq(b.path / "model.onnx")
    assert report.pairs > 50 and report.weight_dequantize == 56
    build = json.loads((b.path / "build.json").read_text())
    assert build["precision"] == "int8" and "INT8" in build["flags"]
    assert b.manifest["quantization"]["activations"] == "int8 symmetric"
    assert b.manifest["accuracy"]["passed"] and "stand-in" in b.manifest["accuracy"]["runtime"]
    assert b.manifest["golden"]["reference_backend"] == "onnxruntime"  # TensorRT is verified on the device
    with edgepose.load(b.path, backend="onnxruntime", verify=True):
        pass


def test_quantizable_layers_and_unknown_exclusions(model, tmp_path):
    from edgepose.calibration.dataset import CalibrationSet
    from edgepose.export.onnx import export_onnx
    from edgepose.export.targets import get_target
    from edgepose.export.targets.base import ExportContext
    from edgepose.runtimes.spec import ModelSpec

    spec = ModelSpec.from_meta(model.edgepose_meta)
    onnx_exp = export_onnx(model, tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calib = CalibrationSet.from_source("synthetic:4", spec, progress=False)
    ctx = ExportContext(model=model, spec=spec, precision="int8", onnx=onnx_exp, dir=tmp_path, workspace=tmp_path,
                        calib=calib, exclude=("/no/such/Conv",))
    layers = get_target("onnx").quantizable_layers(ctx)
    assert len(layers) == 56 and layers[-1] == "/final_layer/Conv"  # a plain export: no decoder wrapper
    with pytest.raises(ConfigError, match="not in the model"):
        get_target("onnx").build(ctx)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_percentile_calibration_with_the_decoder_in_the_graph(model, tmp_path):
    """The in-graph decoder masks scores with -inf; calibration runs on the network before it, so the percentile
    histogram does not meet an infinite range (it raised ValueError) and the decoder gets no INT8 range."""
    from edgepose.calibration.dataset import CalibrationSet
    from edgepose.export.onnx import export_onnx
    from edgepose.export.targets.onnx import calibration_ranges, prepared_model, quantize_qdq
    from edgepose.runtimes.spec import ModelSpec

    onnx_exp = export_onnx(model, tmp_path / "m.onnx", decode="graph")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        calib = CalibrationSet.from_source("synthetic:8", ModelSpec.from_meta(model.edgepose_meta), progress=False)
    ranges = {}
    for method in ("minmax", "percentile"):
        ws = tmp_path / method
        ws.mkdir()
        path = calibration_ranges(prepared_model(onnx_exp.path, ws), calib, method, "input", ws)
        ranges[method] = json.loads(path.read_text())["data"]
        quantize_qdq(onnx_exp.path, ws / "int8.onnx", calib, input_name="input", workspace=ws, method=method)
        assert (ws / "int8.onnx").stat().st_size > 0
    assert set(ranges["minmax"]) == set(ranges["percentile"]) and not any("/decoder/" in k for k in ranges["minmax"])

    def top(entry) -> float:  # ORT stores a numpy value as {"data": [x] or x, ...} or as a plain number
        value = entry["highest"]
        value = value["data"] if isinstance(value, dict) else value
        return float(value[0] if isinstance(value, list) else value)

    # a percentile range lies inside the min-max one, and clips some of them
    assert all(top(v) <= top(ranges["minmax"][k]) + 1e-6 for k, v in ranges["percentile"].items())
    assert any(top(v) < top(ranges["minmax"][k]) - 1e-6 for k, v in ranges["percentile"].items())
