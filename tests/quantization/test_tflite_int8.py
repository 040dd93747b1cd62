"""TFLite full-INT8 (ai-edge-quantizer on the litert-torch fp32 model) and FP16 bundles of the tflite target.

Bundles are built with the target directly (``TARGET.build(ctx)`` + manifest), not through the accuracy gate,
from a calibration set of real COCO person crops / images (../shared/data/coco-mini) and the default trained
weights. The litert-torch fp32 conversion (~10 s here) runs once per model: later builds reuse it from the
workspace, as the sensitivity loop does. INT8 is checked in the written file: the dtype every op computes in.
"""

from __future__ import annotations

import numpy as np
import pytest
from quant_builds import MODELS, target_builds

import edgepose
from edgepose.errors import ConfigError
from edgepose.utils.lazy import is_importable

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")

pytestmark = [
    pytest.mark.tflite,
    pytest.mark.filterwarnings("ignore:calibration set has only:UserWarning"),
    pytest.mark.skipif(not all(is_importable(m) for m in ("ai_edge_litert", "litert_torch", "ai_edge_quantizer")),
                       reason="ai-edge-litert / litert-torch / ai-edge-quantizer not installed"),
]


def _setup(name: str, tmp_path_factory):
    return target_builds("tflite", name, tmp_path_factory)


@pytest.fixture(scope="module", params=MODELS)
def setup(request, tmp_path_factory):
    return _setup(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def topdown(tmp_path_factory):
    return _setup(MODELS[0], tmp_path_factory)


def _ops(bundle) -> list[tuple[str, str]]:
    from edgepose.runtimes.tflite import model_ops

    return model_ops(bundle.path / "model.tflite")


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


@pytest.mark.slow
def test_int8_bundle_is_full_integer_and_runs(setup):
    bundle = setup.build("int8", "int8")
    ops = _ops(bundle)
    compute = [(op, dtype) for op, dtype in ops if op not in ("QUANTIZE", "DEQUANTIZE")]
    assert all(dtype == "int8" for _, dtype in compute), sorted(set(compute))
    assert sum(op in CONV_OPS for op, _ in compute) >= 56
    assert ("RESIZE_NEAREST_NEIGHBOR", "int8") in compute and ("ADD", "int8") in compute  # upsampling, residuals
    assert ops[0] == ("QUANTIZE", "float32") and ops[-1] == ("DEQUANTIZE", "int8")  # float I/O
    q = bundle.manifest["quantization"]
    assert q["tool"].startswith("ai-edge-quantizer ") and q["io"] == "float32" and q["int8_op_share"] == 1.0
    assert q["calibration"]["digest"] == setup.calib.digest and q["kept_float"] == q["kept_float_auto"] == []
    io = bundle.manifest["io"]
    assert io["inputs"][0]["dtype"] == "float32" and {o["dtype"] for o in io["outputs"]} == {"float32"}
    with edgepose.load(bundle.path, threads=2) as rt:
        outs = rt.infer(next(setup.calib.batches("NHWC")))
    assert [o.shape for o in outs] == [tuple(o["shape"]) for o in io["outputs"]]
    assert all(np.isfinite(o).all() for o in outs)


@pytest.mark.slow
def test_int8_outputs_follow_fp32(topdown):
    int8, fp32 = topdown.build("int8", "int8"), topdown.build("fp32", "fp32")
    with edgepose.load(int8.path) as q, edgepose.load(fp32.path) as f:
        for x in list(topdown.calib.batches("NHWC"))[:4]:
            a, b = q.infer(x)[0], f.infer(x)[0]
            assert _corr(a, b) > 0.9
            assert (a.reshape(17, -1).argmax(1) == b.reshape(17, -1).argmax(1)).mean() >= 0.5


@pytest.mark.slow
def test_int8_output_ranges_cover_the_calibration_extremes(setup):
    """MinMax is the min / max over the whole calibration set: every output's int8 range holds the fp32 model's
    extremes on the calibration samples (ai-edge-quantizer's default moving average of per-sample extremes
    clipped CenterNet's centre-heatmap peaks, which tied them in score and in the 3x3 peak test)."""
    from edgepose.runtimes.tflite import interpreter_class

    int8, fp32 = setup.build("int8", "int8"), setup.build("fp32", "fp32")
    with edgepose.load(fp32.path) as f:
        outs = [f.infer(x) for x in setup.calib.batches("NHWC")]
    it = interpreter_class()(model_path=str(int8.path / "model.tflite"))
    tensors = {d["name"]: d for d in it.get_tensor_details()}
    for i, io in enumerate(int8.manifest["io"]["outputs"]):  # the int8 tensor each float output dequantizes
        scale, zero = tensors[io["tensor"].removesuffix("_dequant")]["quantization"]
        lo, hi = min(float(o[i].min()) for o in outs), max(float(o[i].max()) for o in outs)
        assert (-128 - zero) * scale <= lo + scale and (127 - zero) * scale >= hi - scale, (io["name"], lo, hi)


@pytest.mark.slow
def test_centernet_int8_passes_the_accuracy_gate(tmp_path):
    """The default bottom-up model through the real export path: all-INT8, gate on the default synthetic-val:300
    (on synthetic-val:100 it was AP 9.8 vs fp32 19.3 with the moving-average ranges). About 20 s."""
    from edgepose.models import create

    model = create("centernet-mnv2s", weights="default").eval()
    bundle = edgepose.export(model, target="tflite", precision="int8", calib="synthetic:128", out=tmp_path / "b",
                             log=None)
    acc, q = bundle.manifest["accuracy"], bundle.manifest["quantization"]
    assert acc["passed"] and acc["ap_drop"] <= 1.0 and acc["ap_reference"] > 15.0, acc
    assert q["int8_op_share"] == 1.0 and q["kept_float"] == [] and "mixed_precision" not in q
    with edgepose.load(bundle.path, verify=True):  # golden samples of a bottom-up INT8 bundle
        pass


@pytest.mark.slow
def test_int8_io_option_gives_int8_tensors_and_same_results(topdown):
    float_io, int8_io = topdown.build("int8", "int8"), topdown.build("int8-io", "int8", int8_io=True)
    ops = _ops(int8_io)
    assert all(op not in ("QUANTIZE", "DEQUANTIZE") for op, _ in ops)
    assert int8_io.manifest["io"]["inputs"][0]["dtype"] == "int8"
    assert int8_io.manifest["quantization"]["io"] == "int8"
    x = next(topdown.calib.batches("NHWC"))
    with edgepose.load(float_io.path) as a, edgepose.load(int8_io.path) as b:
        assert b.input_metadata()[next(iter(b.input_metadata()))][1] == "float32"  # quantized by the runtime
        ya, yb = a.infer(x)[0], b.infer(x)[0]
    assert yb.dtype == np.float32 and _corr(ya, yb) > 0.99


@pytest.mark.slow
def test_two_calibrations_write_identical_files(topdown):
    from edgepose.export.targets import tflite

    first = topdown.build("int8", "int8")
    tflite._CALIBRATION_CACHE.clear()  # calibrate again, not from the cache
    again = topdown.build("int8-again", "int8")
    assert (first.path / "model.tflite").read_bytes() == (again.path / "model.tflite").read_bytes()


@pytest.mark.slow
def test_excluded_layer_stays_float(topdown):
    from edgepose.export.targets.tflite import TARGET

    layers = TARGET.quantizable_layers(topdown.context(topdown.root / "layers", "int8"))
    assert len(layers) == 56 and len(set(layers)) == 56
    assert layers[:2] == ["features.0.0", "features.1.conv.0.0"] and layers[-2:] == ["upsample_layers.9", "final_layer"]
    modules = dict(topdown.model.named_modules())
    assert all(type(modules[n]).__name__ == "Conv2d" for n in layers)
    bundle = topdown.build("kept", "int8", exclude=["final_layer"])
    ops = _ops(bundle)
    assert ops.count(("CONV_2D", "float32")) == 1 and ops.count(("CONV_2D", "int8")) == 38
    assert bundle.manifest["quantization"]["kept_float"] == ["final_layer"]
    assert bundle.manifest["quantization"]["int8_op_share"] < 1.0
    with edgepose.load(bundle.path) as rt:
        assert np.isfinite(rt.infer(next(topdown.calib.batches("NHWC")))[0]).all()


@pytest.mark.slow
def test_fp16_bundle_has_float16_weights(topdown):
    fp16, fp32 = topdown.build("fp16", "fp16"), topdown.build("fp32", "fp32")
    ops = _ops(fp16)
    assert ops.count(("DEQUANTIZE", "float16")) >= 56
    assert all(dtype == "float32" for op, dtype in ops if op in CONV_OPS)
    ratio = (fp16.path / "model.tflite").stat().st_size / (fp32.path / "model.tflite").stat().st_size
    assert 0.45 < ratio < 0.6
    x = next(topdown.calib.batches("NHWC"))
    with edgepose.load(fp16.path) as a, edgepose.load(fp32.path) as b:
        ya, yb = a.infer(x)[0], b.infer(x)[0]
    assert np.abs(ya - yb).max() <= 1e-2 * np.abs(yb).max()


@pytest.mark.slow
def test_bad_int8_requests_are_config_errors(topdown):
    from edgepose.export.targets.tflite import TARGET

    with pytest.raises(ConfigError, match="not in the TFLite model: \\['no.such.conv'\\]"):
        TARGET.build(topdown.context(topdown.root / "bad-1", "int8", exclude=["no.such.conv"]))
    with pytest.raises(ConfigError, match="method must be one of minmax, got 'entropy'"):
        ctx = topdown.context(topdown.root / "bad-2", "int8")
        ctx.method = "entropy"
        TARGET.build(ctx)
    ctx = topdown.context(topdown.root / "bad-3", "int8")
    ctx.calib = None
    with pytest.raises(ConfigError, match="needs calibration data"):
        TARGET.build(ctx)
    with pytest.raises(ConfigError, match="only apply to precision int8"):
        TARGET.build(topdown.context(topdown.root / "bad-4", "fp16", exclude=["final_layer"]))


@pytest.mark.slow
def test_transposed_conv_head_runs_int8(tmp_path):
    """SimpleBaseline's original head (3 x ConvTranspose2d + BN + ReLU): litert-torch folds each BN into a
    (1, 1, 1, C) TRANSPOSE_CONV bias, which ai-edge-quantizer 0.10 quantizes along its size-1 first axis (a file
    the interpreter refuses); the conversion rewrites them to (C,) biases, so the transposed convs run INT8.
    Random weights with non-trivial BN statistics (non-zero folded biases, as in a trained model), MobileNetV2
    x0.5 at 96x128 to keep it short; its error is compared with the same build that keeps the heads float."""
    import torch

    from edgepose.bundle import Bundle, write_manifest
    from edgepose.calibration import CalibrationSet
    from edgepose.export.api import _spec_for
    from edgepose.export.targets.base import ExportContext
    from edgepose.export.targets.tflite import (
        TARGET,
        float_model,
        layer_table,
        nhwc_module,
        sample_input,
        with_1d_tconv_bias,
    )
    from edgepose.models import create

    torch.manual_seed(0)
    model = create("simplebaseline-mnv2", width_mult=0.5, head_channels=64, input_size=(96, 128)).eval()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    spec = _spec_for(model, TARGET, "host")  # the raw heatmaps: every compute op of the file is the model's
    calib = CalibrationSet.from_source("synthetic:32", spec, progress=False)
    workspace = tmp_path / "ws"
    workspace.mkdir()

    def build(tag, exclude=()):
        out = tmp_path / tag
        out.mkdir()
        ctx = ExportContext(model=model, spec=spec, precision="int8", onnx=None, dir=out, workspace=workspace,
                            options={}, log=lambda *_: None, calib=calib, exclude=tuple(exclude))
        manifest = dict(TARGET.build(ctx), target="tflite", backend="tflite", precision="int8",
                        spec=spec.to_dict())
        return Bundle(out, write_manifest(out, manifest)), ctx

    bundle, ctx = build("int8")
    deconvs = ["deconv_layers.0", "deconv_layers.3", "deconv_layers.6"]
    src = float_model(ctx, nhwc_module(ctx), sample_input(spec))
    # the fp32 conversion already carries (C,) biases (XNNPACK needs them too), so nothing is left to rewrite
    assert not any(layer.float_only for layer in layer_table(src, model))
    assert with_1d_tconv_bias(src) == src
    ops = _ops(bundle)
    assert ops.count(("TRANSPOSE_CONV", "int8")) == 3
    assert all(dtype == "int8" for op, dtype in ops if op not in ("QUANTIZE", "DEQUANTIZE"))
    q = bundle.manifest["quantization"]
    assert q["int8_op_share"] == 1.0 and q["kept_float_auto"] == [] and q["kept_float"] == []
    float_heads, _ = build("float-heads", exclude=deconvs)
    assert _ops(float_heads).count(("TRANSPOSE_CONV", "float32")) == 3
    with edgepose.load(bundle.path) as a, edgepose.load(float_heads.path) as b:
        for x in list(calib.batches("NHWC"))[:4]:
            ya, yb = a.infer(x)[0], b.infer(x)[0]
            assert np.isfinite(ya).all() and _corr(ya, yb) > 0.99


@pytest.mark.slow
def test_in_graph_decoder_stays_float_and_decodes_as_the_host(tmp_path):
    """decode='graph' with INT8: every decoder op and the op writing the keypoints compute in float32 (int8
    coordinates would have a 0.5 px resolution on a 128 px input, and an int8 DARK step moved keypoints 1.3
    px and failed the gate), and the keypoints follow the host-decode INT8 bundle of the same calibration."""
    from edgepose.calibration import CalibrationSet
    from edgepose.export.api import _spec_for
    from edgepose.export.targets import get_target
    from edgepose.models import create

    model = create(MODELS[0], weights="default").eval()
    calib = CalibrationSet.from_source("synthetic:32", _spec_for(model, get_target("tflite"), "graph"), progress=False)
    bundles = {d: edgepose.export(model, target="tflite", out=tmp_path / d, precision="int8", decode=d, calib=calib,
                                  val="synthetic-val:20", log=None) for d in ("graph", "host")}
    ops = _ops(bundles["graph"])
    first = next(i for i, (op, _) in enumerate(ops) if op == "REDUCE_MAX")  # the decoder's first op
    assert sum(dtype == "int8" and op in CONV_OPS for op, dtype in ops[:first]) >= 56  # the model is INT8
    assert not [(op, dtype) for op, dtype in ops[first:] if dtype in ("int8", "uint8", "int16")]
    assert ops[-1] == ("CONCATENATION", "float32")  # the keypoints themselves
    q = bundles["graph"].manifest["quantization"]
    assert q["float_decoder"] is True and q["int8_op_share"] == 1.0  # the share counts the model, not the decoder
    gates = [bundles[d].manifest["accuracy"] for d in ("graph", "host")]
    assert gates[0]["passed"] and abs(gates[0]["ap_drop"] - gates[1]["ap_drop"]) < 0.5, gates
    assert abs(gates[0]["mean_keypoint_error_px"] - gates[1]["mean_keypoint_error_px"]) < 0.2, gates
