"""TFLite / LiteRT: litert-torch export (NHWC, host and graph decode) and the interpreter runtime.

Exports are real conversions (8-10 s each on this 2-core machine, plus ~5 s to import litert-torch), so the
host-decode bundles are built once per module and every test that converts is marked slow.
Reference = the same PyTorch module (plus in-graph decoder for decode='graph') on the NCHW tensor.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgepose
from edgepose.codecs import codec_from_dict
from edgepose.errors import BundleError, ConfigError
from edgepose.pipeline.preprocess import InputSpec, bottomup_batch, topdown_batch
from edgepose.runtimes.spec import ModelSpec
from edgepose.testing import distinct_peaks
from edgepose.utils.lazy import is_importable

REPO = Path(__file__).resolve().parents[2]
COCO = REPO.parent / "shared" / "data" / "coco-mini"
MOVENET = REPO.parent / "shared" / "models" / "movenet_singlepose_lightning_int8.tflite"
TOPDOWN = ("simplebaseline-mnv2s-edge", (64, 96))
CENTERNET = ("centernet-mnv2s", (128, 128))

pytestmark = [
    pytest.mark.tflite,
    pytest.mark.skipif(not is_importable("ai_edge_litert"), reason="ai-edge-litert not installed (edgepose[tflite])"),
]
needs_converter = pytest.mark.skipif(not is_importable("litert_torch"), reason="litert-torch not installed")


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))


def _image(name: str = "000000196141.jpg") -> np.ndarray:
    image = cv2.imread(str(COCO / name))
    if image is None:
        pytest.fail(f"real test image {COCO / name} not found")
    return image


def _boxes(image_id: int) -> np.ndarray:
    anns = json.loads((COCO / "test_coco.json").read_text())["annotations"]
    return np.asarray([[x, y, x + w, y + h] for a in anns if a["image_id"] == image_id and a["num_keypoints"] > 0
                       for x, y, w, h in [a["bbox"]]], np.float32)


def _export(tmp_path_factory, name: str, size, decode: str, parity: bool):
    import torch

    from edgepose.export.targets import TARGETS, register_target
    from edgepose.export.targets.tflite import TARGET
    from edgepose.models import create

    if "tflite" not in TARGETS:  # targets/__init__ registers it once every optional target module exists
        register_target(TARGET)
    torch.manual_seed(0)
    model = _calibrate_batchnorm(create(name, input_size=size))
    out = tmp_path_factory.mktemp("tflite") / f"{name}-{decode}"
    bundle = edgepose.export(model, target="tflite", out=out, decode=decode, parity=parity, log=lambda *_: None)
    return model, bundle


def _calibrate_batchnorm(model):
    """Set BatchNorm statistics from the real images: an untrained model's outputs are otherwise nearly
    constant (CenterNet centre logits equal to 1e-7 everywhere), so argmax / top-k ties would decide the
    decoded keypoints on any backend. After this, peaks are separated by far more than fp32 rounding."""
    import torch

    from edgepose.runtimes.spec import ModelSpec

    spec = ModelSpec.from_meta(model.edgepose_meta)
    images = [_image(p.name) for p in sorted(COCO.glob("*.jpg"))]
    if spec.kind == "centernet":
        batch = np.concatenate([bottomup_batch(image, spec.input)[0] for image in images])
    else:
        batch = np.concatenate([topdown_batch(_image(), _boxes(196141), spec.input)[0],
                                *(topdown_batch(image, np.array([[0, 0, image.shape[1], image.shape[0]]],
                                                                np.float32), spec.input)[0] for image in images)])
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the one batch
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(batch))
    return model.eval()


def _reference(model, bundle, decode: str):
    """TorchRuntime over the same module, NCHW, with the bundle's spec."""
    from edgepose.export.onnx import wrap_for_export
    from edgepose.runtimes.torch import TorchRuntime

    spec = bundle.spec()
    spec.input.layout = "NCHW"
    return TorchRuntime(wrap_for_export(model, decode), spec).load()


@pytest.fixture(scope="module")
def topdown(tmp_path_factory):
    return _export(tmp_path_factory, *TOPDOWN, decode="host", parity=False)  # raw heatmaps out


@pytest.fixture(scope="module")
def centernet(tmp_path_factory):
    return _export(tmp_path_factory, *CENTERNET, decode="host", parity=False)


@needs_converter
@pytest.mark.slow
def test_host_decode_manifest_records_nhwc_io(topdown):
    _, bundle = topdown
    m = bundle.manifest
    assert (m["target"], m["backend"], m["model_file"], m["precision"]) == ("tflite", "tflite", "model.tflite", "fp32")
    assert m["spec"]["decode"] == "host" and m["spec"]["input"]["layout"] == "NHWC"
    assert m["io"]["inputs"][0]["shape"] == [1, 96, 64, 3] and m["io"]["inputs"][0]["dtype"] == "float32"
    assert [o["name"] for o in m["io"]["outputs"]] == ["heatmaps"]
    assert m["io"]["outputs"][0]["shape"] == [1, 17, 24, 16]  # outputs stay NCHW
    assert m["conversion"]["tool"] == "litert-torch" and m["conversion"]["seconds"] > 0
    assert (bundle.path / "model.tflite").stat().st_size > 100_000


def test_resolve_decode_rules():
    from edgepose.export.targets.tflite import TARGET

    # auto: in the graph where that measured faster on XNNPACK (fp32, INT8), on the host for GPU-delegate fp16
    assert TARGET.resolve_decode("auto", "heatmap", {"method": "argmax"}) == "graph"
    assert TARGET.resolve_decode("auto", "heatmap", {"kind": "heatmap", "method": "dark"}, "int8") == "graph"
    assert TARGET.resolve_decode("auto", "centernet", {}) == "graph"
    assert TARGET.resolve_decode("auto", "centernet", {"kind": "movenet-multipose"}, "int8") == "graph"
    assert TARGET.resolve_decode("auto", "regression", {"kind": "movenet"}) == "graph"
    assert TARGET.resolve_decode("auto", "heatmap", {"method": "dark"}, "fp16") == "host"
    assert TARGET.resolve_decode("auto", "centernet", {}, "fp16") == "host"
    assert TARGET.resolve_decode("auto", "simcc", {"kind": "simcc"}) == "host"  # not measured: host
    assert TARGET.resolve_decode("auto", "paf", {"kind": "paf"}, "int8") == "host"
    assert TARGET.resolve_decode("graph", "centernet", {}) == "graph"
    assert TARGET.resolve_decode("graph", "heatmap", {"method": "dark"}) == "graph"
    with pytest.raises(ConfigError, match="decode must be"):
        TARGET.resolve_decode("device", "heatmap", {})
    TARGET.check_precision("fp16")
    with pytest.raises(ConfigError, match="precision"):
        TARGET.check_precision("int4")


@needs_converter
@pytest.mark.slow
def test_topdown_raw_outputs_and_keypoints_match_torch(topdown):
    model, bundle = topdown
    image, boxes = _image(), _boxes(196141)
    with edgepose.load(bundle.path, threads=2) as rt, _reference(model, bundle, "host") as ref:
        assert rt.input_metadata() == {"serving_default_args_0": ((1, 96, 64, 3), "float32")}
        batch, _ = topdown_batch(image, boxes, rt.spec.input)  # (5, 96, 64, 3): the base splits into batch 1
        raw, want = rt.infer(batch)[0], ref.infer(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))[0]
        assert raw.shape == want.shape == (len(boxes), 17, 24, 16)
        assert _rel(want, raw) <= 1e-4
        argmax = codec_from_dict(dict(rt.spec.codec, method="argmax"))
        got_kp, want_kp = argmax.decode(raw), argmax.decode(want)
        assert len(np.unique(want_kp[..., :2].reshape(-1, 2), axis=0)) > 20  # peaks differ: not an all-tied output
        np.testing.assert_allclose(got_kp, want_kp, atol=1e-4)
        # the model's own codec (DARK): its log / Taylor step amplifies ~1e-7 relative differences of the
        # near-zero heatmap values; measured up to 0.008 px, the parity gate allows 0.1 px
        got_kp, want_kp = rt.codec.decode(raw), ref.codec.decode(want)
        keep = distinct_peaks(want, want_kp[..., 2])  # scores the peak-distinctness factor left alone
        assert keep.sum() >= 10  # 25 of 85 on this model (a small one on a photo: many flat maps)
        np.testing.assert_allclose(got_kp[..., 2][keep], want_kp[..., 2][keep], rtol=1e-4)
        assert np.abs(got_kp[..., :2] - want_kp[..., :2]).max() <= 0.02
        poses, ref_poses = rt(image, boxes), ref(image, boxes)
        np.testing.assert_allclose(poses.keypoints, ref_poses.keypoints, atol=0.1)  # image px (~2x input px)


@needs_converter
@pytest.mark.slow
def test_centernet_six_outputs_keep_model_order(centernet):
    model, bundle = centernet
    image = _image()
    with edgepose.load(bundle.path) as rt, _reference(model, bundle, "host") as ref:
        names = [o["name"] for o in bundle.manifest["io"]["outputs"]]
        assert names == ["hm", "reg", "wh", "hps", "hm_hp", "hp_offset"]
        assert rt.output_names() == [o["tensor"] for o in bundle.manifest["io"]["outputs"]]
        batch, _ = bottomup_batch(image, rt.spec.input)
        got, want = rt.infer(batch), ref.infer(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        assert [g.shape for g in got] == [w.shape for w in want]
        for i, (g, w) in enumerate(zip(got, want)):
            assert _rel(w, g) <= 1e-4, names[i]
            for j, other in enumerate(want):  # reg, wh, hp_offset share a shape: order must be told by values
                if j != i and other.shape == g.shape:
                    assert _rel(other, g) > 1e-2, (names[i], names[j])
        kps, scores, boxes = rt.codec.decode(tuple(got))
        ref_kps, ref_scores, ref_boxes = ref.codec.decode(tuple(want))
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(kps, ref_kps, atol=1e-3)
        np.testing.assert_allclose(boxes, ref_boxes, atol=1e-3)


# Graph decode on TFLite (output names, parity, keypoints vs PyTorch) is tested by the conformance suite on the
# trained default models: tests/export/test_conformance.py::TestTFLite, decode 'graph'.


@needs_converter
@pytest.mark.slow
def test_corrupt_model_raises_bundle_error(topdown, tmp_path):
    from edgepose.runtimes.tflite import TFLiteRuntime

    _, bundle = topdown
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    model_file = copy / "model.tflite"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    with pytest.raises(BundleError, match="bytes"):  # the manifest's size / sha256 check
        edgepose.load(copy)
    with pytest.raises(BundleError, match="TFLite interpreter cannot load .*Flatbuffer"):
        edgepose.load(copy, check_files=False)
    with pytest.raises(BundleError, match="not found"):
        TFLiteRuntime(tmp_path / "missing.tflite", bundle.spec()).load()
    with pytest.raises(BundleError, match="manifest lists"):
        TFLiteRuntime(bundle.model_path, bundle.spec(), output_tensors=["heatmaps"]).load()
    with pytest.raises(ConfigError, match="threads"):
        TFLiteRuntime(bundle.model_path, bundle.spec(), threads=0)


def _movenet_spec(dtype: str = "uint8") -> ModelSpec:
    return ModelSpec(kind="regression", keypoints="coco", decode="graph",
                     input=InputSpec(size=(192, 192), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), layout="NHWC",
                                     dtype=dtype))


def test_movenet_uint8_input_through_the_raw_interpreter():
    from edgepose.runtimes.tflite import TFLiteRuntime

    if not MOVENET.is_file():
        pytest.fail(f"MoveNet model not found at {MOVENET}")
    image = _image("000000000785.jpg")  # one skier, 17 visible keypoints
    ann = next(a for a in json.loads((COCO / "test_coco.json").read_text())["annotations"] if a["image_id"] == 785)
    gt = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
    x, y, w, h = ann["bbox"]
    with TFLiteRuntime(MOVENET, _movenet_spec(), threads=1) as rt:
        assert rt.input_metadata_impl() == {"serving_default_input:0": ((1, 192, 192, 3), "uint8")}
        batch, _ = topdown_batch(image, np.array([[x, y, x + w, y + h]], np.float32), rt.spec.input)
        raw = rt.infer(batch)[0]
        assert raw.shape == (1, 1, 17, 3) and raw.dtype == np.float32 and 0 <= raw.min() and raw.max() <= 1
        poses = rt(image, np.array([[x, y, x + w, y + h]], np.float32))
    visible = gt[:, 2] > 0
    err = np.linalg.norm(poses.keypoints[0, visible, :2] - gt[visible, :2], axis=1)
    assert np.median(err) < 0.05 * h, err  # a real model on a real image: joints land on the person


def test_uint8_input_without_quantization_refuses_a_float_spec():
    from edgepose.runtimes.tflite import TFLiteRuntime

    with pytest.raises(BundleError, match="without quantization parameters"):
        TFLiteRuntime(MOVENET, _movenet_spec("float32")).load()


def test_quantized_io_conversion():
    from edgepose.runtimes.tflite import TFLiteRuntime

    rt = TFLiteRuntime(MOVENET, _movenet_spec("float32"))
    rt._input = {"dtype": np.int8, "quantization": (0.05, -3)}
    x = np.array([-10.0, -0.05, 0.0, 0.26, 100.0], np.float32)
    np.testing.assert_array_equal(rt._to_input(x), np.array([-128, -4, -3, 2, 127], np.int8))
    out = rt._from_output(np.array([0, 128, 255], np.uint8), {"quantization": (0.5, 128)})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [-64.0, 0.0, 63.5])


def test_output_order_sorts_litert_names_numerically():
    from edgepose.runtimes.tflite import model_order

    names = [f"serving_default_output_{i}_output" for i in (0, 1, 10, 11, 2)]
    assert model_order(names) == [0, 1, 4, 2, 3]
    assert model_order(["StatefulPartitionedCall:0", "b"]) == [0, 1]
