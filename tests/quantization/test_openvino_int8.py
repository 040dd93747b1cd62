"""OpenVINO INT8 (NNCF) and FP16 bundles built by the openvino target, loaded through ``edgepose.load``.

Bundles are built with the target directly (``TARGET.build(ctx)`` + manifest), not through the accuracy gate
(tested with the export API elsewhere), from a calibration set of real COCO person crops / images
(../shared/data/coco-mini) and the default trained weights. INT8 is checked where it runs: the compiled
model's runtime precisions (u8 / i8 convolutions) and FakeQuantize ops in the IR.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from quant_builds import COCO, MODELS, target_builds

import edgepose
from edgepose.errors import ConfigError
from edgepose.utils.lazy import is_importable

pytestmark = [
    pytest.mark.filterwarnings("ignore:calibration set has only:UserWarning"),
    pytest.mark.openvino,
    pytest.mark.skipif(not (is_importable("openvino") and is_importable("nncf")),
                       reason="openvino / nncf not installed (edgepose[openvino])"),
]


def _setup(name: str, tmp_path_factory):
    return target_builds("openvino", name, tmp_path_factory)


@pytest.fixture(scope="module", params=MODELS)
def setup(request, tmp_path_factory):
    return _setup(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def topdown(tmp_path_factory):
    return _setup(MODELS[0], tmp_path_factory)


def _image(name: str = "000000196141.jpg") -> np.ndarray:
    image = cv2.imread(str(COCO / name))
    if image is None:
        pytest.fail(f"real test image {COCO / name} not found")
    return image


def _boxes(image_id: int) -> np.ndarray:
    anns = json.loads((COCO / "test_coco.json").read_text())["annotations"]
    return np.asarray([[x, y, x + w, y + h] for a in anns if a["image_id"] == image_id and a["num_keypoints"] > 0
                       for x, y, w, h in [a["bbox"]]], np.float32)


def _fake_quantize_count(xml: Path) -> int:
    return xml.read_text().count('type="FakeQuantize"')


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


@pytest.mark.slow
def test_int8_bundle_loads_runs_and_computes_int8(setup):
    bundle = setup.build("int8", "int8")
    m = bundle.manifest
    q = m["quantization"]
    assert m["openvino"]["inference_precision"] == "f32"
    assert q["tool"].startswith("nncf ") and q["preset"] == "performance" and q["subset_size"] == len(setup.calib)
    assert q["calibration"]["digest"] == setup.calib.digest and q["kept_float"] == []
    assert q["float_decoder"] == (setup.spec.decode == "graph")
    assert m["openvino"]["weights"].get("i8", 0) >= 50  # conv weights stored int8
    assert _fake_quantize_count(bundle.path / "model.xml") == q["fake_quantize_ops"] > 50
    with edgepose.load(bundle.path, threads=2) as rt:
        conv = rt.runtime_precisions(("Convolution",))
        assert set(conv) <= {"u8", "i8"} and sum(conv.values()) >= 50, conv
        image, boxes = _image(), _boxes(196141)
        poses = rt(image, boxes) if setup.spec.kind == "heatmap" else rt(image, score_threshold=0.0)
    assert poses.keypoints.shape[1:] == (17, 3) and np.isfinite(poses.keypoints).all()
    assert len(poses) == (len(boxes) if setup.spec.kind == "heatmap" else setup.model.edgepose_meta.codec["max_people"])


@pytest.mark.slow
def test_int8_outputs_follow_fp32(topdown):
    """Raw heatmaps of the INT8 bundle on real crops stay close to fp32 (same IR runtime, f32 precision)."""
    int8, fp32 = topdown.build("int8", "int8"), topdown.build("fp32", "fp32")
    batches = list(topdown.calib.batches("NCHW"))[:4]
    with edgepose.load(int8.path) as q, edgepose.load(fp32.path) as f:
        for x in batches:
            a, b = q.infer(x)[0], f.infer(x)[0]
            assert _corr(a, b) > 0.9
            peaks_a, peaks_b = a.reshape(17, -1).argmax(1), b.reshape(17, -1).argmax(1)
            assert (peaks_a == peaks_b).mean() >= 0.5


@pytest.mark.slow
def test_two_calibrations_write_identical_files(topdown):
    a, b = topdown.build("int8", "int8"), topdown.build("int8-again", "int8")
    for f in ("model.xml", "model.bin"):
        assert (a.path / f).read_bytes() == (b.path / f).read_bytes(), f"{f} differs between two NNCF runs"


@pytest.mark.slow
def test_ignored_scope_keeps_layer_float(topdown):
    from edgepose.export.targets.openvino import TARGET

    ctx = topdown.context(topdown.root / "layers", "int8")
    layers = TARGET.quantizable_layers(ctx)
    assert len(layers) == 56 and layers[-1] == "/model/final_layer/Conv/WithoutBiases"
    assert layers[0].startswith("/model/features/features.0/")
    bundle = topdown.build("ignored", "int8", exclude=[layers[-1]])
    full = topdown.build("int8", "int8")
    assert bundle.manifest["quantization"]["kept_float"] == [layers[-1]]
    assert (bundle.manifest["quantization"]["fake_quantize_ops"]
            < full.manifest["quantization"]["fake_quantize_ops"])
    with edgepose.load(bundle.path) as rt:
        assert rt.runtime_precisions(("Convolution",)) == {"f32": 1, "u8": 55}


@pytest.mark.slow
def test_fp16_bundle_has_half_weights_and_asks_f16(topdown):
    fp16, fp32 = topdown.build("fp16", "fp16"), topdown.build("fp32", "fp32")
    assert fp16.manifest["openvino"]["inference_precision"] == "f16"
    assert fp16.manifest["openvino"]["weights"].get("f16", 0) > 50
    ratio = (fp16.path / "model.bin").stat().st_size / (fp32.path / "model.bin").stat().st_size
    assert 0.45 < ratio < 0.55
    with pytest.warns(RuntimeWarning, match="computes in") if _cpu_lacks_f16() else _nothing():
        with edgepose.load(fp16.path) as rt:
            out = rt.infer(next(topdown.calib.batches("NCHW")))[0]
    assert np.isfinite(out).all()


def _cpu_lacks_f16() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return "avx512_fp16" not in flags and "amx_fp16" not in flags


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_bad_int8_requests_are_config_errors(topdown):
    from edgepose.export.targets.openvino import TARGET

    with pytest.raises(ConfigError, match="not in the OpenVINO model: \\['/no/such/Conv'\\]"):
        TARGET.build(topdown.context(topdown.root / "bad-1", "int8", exclude=["/no/such/Conv"]))
    with pytest.raises(ConfigError, match="preset must be one of performance, mixed, got 'fast'"):
        TARGET.build(topdown.context(topdown.root / "bad-2", "int8", preset="fast"))
    ctx = topdown.context(topdown.root / "bad-3", "int8")
    ctx.calib = None
    with pytest.raises(ConfigError, match="needs calibration data"):
        TARGET.build(ctx)
    with pytest.raises(ConfigError, match="only apply to precision int8"):
        TARGET.build(topdown.context(topdown.root / "bad-4", "fp16", exclude=["/model/final_layer/Conv/WithoutBiases"]))
    with pytest.raises(ConfigError, match="inference_precision must be one of"):
        TARGET.build(topdown.context(topdown.root / "bad-5", "fp32", inference_precision="int4"))


def test_fp16_decodes_dark_on_the_host_by_default():
    """Under f16 / bf16 the in-graph DARK step falls back to the integer argmax: auto → host at fp16 only."""
    from edgepose.export.targets import get_target

    target = get_target("openvino")
    dark, argmax = {"method": "dark"}, {"method": "argmax"}
    assert target.resolve_decode("auto", "heatmap", dark, "fp16") == "host"
    assert target.resolve_decode("auto", "heatmap", dark, "fp32") == "graph"
    assert target.resolve_decode("auto", "heatmap", dark, "int8") == "graph"
    assert target.resolve_decode("auto", "heatmap", argmax, "fp16") == "graph"
    assert target.resolve_decode("graph", "heatmap", dark, "fp16") == "graph"  # explicit: the gate judges it
