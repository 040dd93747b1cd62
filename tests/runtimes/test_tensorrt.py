"""TensorRT target and backend: everything before the engine build runs here; engine tests need a GPU.

The engine build/run tests carry ``pytest.mark.tensorrt`` and skip with the backend's own reason
(``unavailable_reason()``) where TensorRT or a CUDA GPU is missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import edgepose
from edgepose.errors import BackendUnavailable, BundleError, ConfigError, ExportError
from edgepose.runtimes.tensorrt import is_available, read_build_settings, unavailable_reason
from edgepose.runtimes.tensorrt.cache import (
    DeviceInfo,
    cache_key,
    check_engine_compat,
    engine_paths,
    find_engine,
    make_sidecar,
    read_sidecar,
    write_engine,
)
from edgepose.runtimes.tensorrt.engine import ensure_engine, explicit_engine
from edgepose.runtimes.tensorrt.settings import BuildSettings, make_profile
from edgepose.utils.lazy import is_importable

needs_gpu = pytest.mark.skipif(not is_available(), reason=unavailable_reason() or "available")
ORIN = DeviceInfo("Orin", "8.7")
SIZE = (64, 96)  # w, h


def _register():
    from edgepose.export.targets import TARGETS
    from edgepose.export.targets.tensorrt import TARGET

    TARGETS.setdefault("tensorrt", TARGET)  # registration is all-or-nothing while other targets are written
    return TARGET


@pytest.fixture(scope="module")
def model():
    from edgepose.models import create

    return create("simplebaseline-mnv2s-edge", input_size=SIZE).eval()


@pytest.fixture(scope="module")
def bundles(model, tmp_path_factory):
    """A fp16 tensorrt bundle and an onnx bundle of the same model."""
    _register()
    root = tmp_path_factory.mktemp("trt-bundles")
    quiet = {"decode": "host", "log": None}
    # parity=False: an fp16 engine (on a GPU machine) would not meet the fp32 gate's 1e-4
    trt = edgepose.export(model, target="tensorrt", precision="fp16", out=root / "trt", parity=False, **quiet)
    onnx = edgepose.export(model, target="onnx", out=root / "onnx", parity=False, **quiet)
    return trt, onnx


def _tiny_onnx(path: Path, batch="batch") -> Path:
    """Conv(3→4)+bias → Relu → Conv(4→2), input (batch, 3, 8, 8); ``batch`` an int or a symbolic name."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n)
             for n, s in (("w1", (4, 3, 3, 3)), ("b1", (4,)), ("w2", (2, 4, 3, 3)))]
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["out"], pads=[1, 1, 1, 1])]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 8, 8])]
    graph = helper.make_graph(nodes, "tiny", inputs,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 2, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _quantize(src: Path, dst: Path, **kw) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.it = iter([{"input": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, **kw)
    return dst


# ---- export ---------------------------------------------------------------------------------------
def test_export_writes_complete_bundle(bundles):
    trt, _ = bundles
    m = trt.manifest
    assert (m["target"], m["backend"], m["precision"]) == ("tensorrt", "tensorrt", "fp16")
    assert m["model_file"] == m["onnx_file"] == "model.onnx" and "edgepose build" in m["note"]
    assert set(m["files"]) == {"model.onnx", "build.json", "golden.npz"}
    assert json.loads((trt.path / "build.json").read_text()) == m["build"]
    assert m["build"]["flags"] == ["FP16"] and m["build"]["precision"] == "fp16"
    assert m["build"]["profile"] == {"input": {k: [1, 3, SIZE[1], SIZE[0]] for k in ("min", "opt", "max")}}
    assert m["build"]["dla_core"] is None and m["build"]["timing_cache"] is True
    assert read_build_settings(trt).to_dict() == m["build"]


def test_tensorrt_bundle_runs_on_onnxruntime_like_onnx_bundle(bundles):
    trt, onnx = bundles
    x = np.random.default_rng(0).normal(size=(1, 3, SIZE[1], SIZE[0])).astype(np.float32)
    with edgepose.load(trt.path, backend="onnxruntime") as a, edgepose.load(onnx.path) as b:
        out_a, out_b = a.infer(x), b.infer(x)
        image = np.random.default_rng(1).integers(0, 255, (120, 90, 3), dtype=np.uint8)
        np.testing.assert_allclose(a(image).keypoints, b(image).keypoints, atol=1e-4)
    assert len(out_a) == len(out_b) == 1
    np.testing.assert_allclose(out_a[0], out_b[0], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(is_available(), reason="TensorRT is usable here")
def test_load_without_tensorrt_names_the_reason(bundles):
    trt, _ = bundles
    with pytest.raises(BackendUnavailable, match="backend 'tensorrt' is not available") as err:
        edgepose.load(trt.path)
    assert unavailable_reason() in str(err.value) and unavailable_reason()
    assert _register().parity_runtime(trt) is None


@pytest.mark.skipif(is_importable("tensorrt"), reason="tensorrt is installed")
def test_unavailable_reason_without_tensorrt():
    assert not is_available()
    assert unavailable_reason().startswith("tensorrt is not installed") and "JetPack" in unavailable_reason()


def test_precisions_and_build_settings_per_precision(tmp_path):
    _register().check_precision("int8")
    with pytest.raises(ConfigError, match="supports precision fp32, fp16, int8"):
        _register().check_precision("int4")
    from edgepose.export.targets.tensorrt import build_settings

    onnx_path = _tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    fp32 = build_settings(onnx_path, "input", "fp32")
    assert fp32.flags == [] and not fp32.tf32 and not fp32.explicit_quantization and not fp32.dynamic_batch
    int8 = build_settings(onnx_path, "input", "int8", {"workspace_mib": 256, "builder_optimization_level": 5})
    assert int8.flags == ["INT8", "FP16"] and int8.explicit_quantization
    assert (int8.workspace_mib, int8.builder_optimization_level) == (256, 5)
    with pytest.raises(ExportError, match="has inputs"):
        build_settings(onnx_path, "images", "fp32")


def test_dynamic_batch_onnx_gets_dynamic_profile(tmp_path):
    from edgepose.export.targets.tensorrt import build_settings, onnx_input_shape

    onnx_path = _tiny_onnx(tmp_path / "dyn.onnx")
    assert onnx_input_shape(onnx_path, "input") == (None, 3, 8, 8)
    s = build_settings(onnx_path, "input", "fp16", {"opt_batch": 2, "max_batch": 8})
    assert s.profile == {"input": {"min": [1, 3, 8, 8], "opt": [2, 3, 8, 8], "max": [8, 3, 8, 8]}}
    assert s.dynamic_batch and s.max_batch == 8
    with pytest.raises(ConfigError, match="opt_batch"):
        make_profile("input", (None, 3, 8, 8), opt_batch=9, max_batch=8)
    with pytest.raises(ConfigError, match="fixed non-batch"):
        make_profile("input", (1, 3, None, 8))


def test_build_settings_validation_and_round_trip():
    profile = make_profile("input", (1, 3, 96, 64))
    s = BuildSettings("fp16", profile, dla_core=0)
    assert BuildSettings.from_dict(s.to_dict()) == s
    with pytest.raises(BundleError, match="unknown keys"):
        BuildSettings.from_dict(dict(s.to_dict(), fancy=1))
    with pytest.raises(BundleError, match="min <= opt <= max"):
        BuildSettings.from_dict(dict(s.to_dict(), profile={"input": {"min": [2], "opt": [1], "max": [3]}}))
    for bad in ({"precision": "fp8"}, {"workspace_mib": 1}, {"builder_optimization_level": 7}, {"dla_core": -1}):
        with pytest.raises(ConfigError):
            BuildSettings(**{"precision": "fp32", "profile": profile, **bad})


# ---- Q/DQ -----------------------------------------------------------------------------------------
def test_qdq_validation(tmp_path):
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType

    from edgepose.export.targets.tensorrt import inspect_qdq, validate_qdq

    fp32 = _tiny_onnx(tmp_path / "fp32.onnx", batch=1)
    sym = _quantize(fp32, tmp_path / "sym.onnx", activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
    report = validate_qdq(sym)
    assert report.ok and report.pairs >= 3 and report.weight_dequantize == 2  # input, r1, out; w1, w2
    assert report.quantize >= report.pairs and report.dequantize == report.pairs + report.weight_dequantize

    asym = _quantize(fp32, tmp_path / "asym.onnx", activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    problems = inspect_qdq(asym).problems
    assert any("uint8" in p for p in problems) and any("int32" in p for p in problems)  # activations, bias
    with pytest.raises(ExportError, match="not TensorRT-compatible"):
        validate_qdq(asym)
    with pytest.raises(ExportError, match="no Q→DQ pair"):
        validate_qdq(fp32)

    proto = onnx.load(str(sym))
    init = next(i for i in proto.graph.initializer if i.name.endswith("_scale") and i.data_type == 1)
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    assert any("must be finite and > 0" in p for p in inspect_qdq(proto).problems)


# ---- engine cache -------------------------------------------------------------------------------
def test_cache_key_changes_with_every_input():
    settings = BuildSettings("fp32", make_profile("input", (1, 3, 96, 64))).to_dict()
    base = cache_key("a" * 64, settings, "10.3.0", ORIN)
    assert base == cache_key("a" * 64, json.loads(json.dumps(settings)), "10.3.0", DeviceInfo("Orin", "8.7"))
    fp16 = BuildSettings("fp16", make_profile("input", (1, 3, 96, 64))).to_dict()
    variants = [cache_key("b" * 64, settings, "10.3.0", ORIN), cache_key("a" * 64, fp16, "10.3.0", ORIN),
                cache_key("a" * 64, dict(settings, workspace_mib=512), "10.3.0", ORIN),
                cache_key("a" * 64, settings, "10.7.0", ORIN),
                cache_key("a" * 64, settings, "10.3.0", DeviceInfo("Orin", "7.2")),
                cache_key("a" * 64, settings, "10.3.0", DeviceInfo("Xavier", "8.7"))]
    assert len({base, *variants}) == 1 + len(variants)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in variants)


def test_engine_paths_bundle_then_user_cache(tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    assert engine_paths(bundle, "k").engine == bundle / "engines" / "k.engine"
    assert engine_paths(bundle, "k").sidecar == bundle / "engines" / "k.json"
    real_access = os.access
    monkeypatch.setattr("edgepose.runtimes.tensorrt.cache.os.access",
                        lambda p, mode: False if Path(p) == bundle else real_access(p, mode))
    assert engine_paths(bundle, "k").engine == tmp_path / "cache" / "engines" / "k.engine"


def _fake_builder(calls: list):
    def build(onnx_path, settings, *, timing_cache=None, log=None):
        calls.append((Path(onnx_path), settings.precision, timing_cache))
        return f"engine-{len(calls)}".encode()

    return build


def test_ensure_engine_builds_once_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    bundle, onnx_path = tmp_path / "b", tmp_path / "b" / "model.onnx"
    bundle.mkdir()
    settings, calls = BuildSettings("fp16", make_profile("input", (1, 3, 8, 8))), []
    kw = {"trt_version": "10.3.0", "device": ORIN, "build_fn": _fake_builder(calls), "log": None}
    first = ensure_engine(bundle, onnx_path, "a" * 64, settings, **kw)
    assert first.parent == bundle / "engines" and first.read_bytes() == b"engine-1" and len(calls) == 1
    assert calls[0][2].name == "trt10.3.0-sm_87-orin.cache"
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, first.with_suffix(".json").name])
    sidecar = read_sidecar(first.with_suffix(".json"))
    assert (sidecar["tensorrt_version"], sidecar["compute_capability"], sidecar["gpu"]) == ("10.3.0", "8.7", "Orin")
    assert ensure_engine(bundle, onnx_path, "a" * 64, settings, **kw) == first and len(calls) == 1
    other = ensure_engine(bundle, onnx_path, "a" * 64, settings, **dict(kw, device=DeviceInfo("Xavier", "7.2")))
    assert other != first and len(calls) == 2
    ensure_engine(bundle, onnx_path, "a" * 64, settings, force=True, **kw)
    assert len(calls) == 3 and first.read_bytes() == b"engine-3"
    with pytest.raises(BundleError, match="run `edgepose build"):
        ensure_engine(bundle, onnx_path, "c" * 64, settings, build=False, **kw)


def test_engine_compat_check(tmp_path):
    sidecar = make_sidecar(key="k", trt_version="10.3.0", device=ORIN, onnx_sha256="a" * 64, settings={},
                           engine_sha256="e" * 64)
    check_engine_compat(sidecar, "10.3.0", ORIN)
    expected = ("engine built with TensorRT 10.3.0 on sm_87; this device has TensorRT 10.7.0 on sm_87: "
                "delete it or run `edgepose build BUNDLE`")
    with pytest.raises(BundleError, match=expected.replace("(", r"\(")):
        check_engine_compat(sidecar, "10.7.0", ORIN)
    with pytest.raises(BundleError, match="TensorRT 10.3.0 on sm_87; this device has TensorRT 10.3.0 on sm_72"):
        check_engine_compat(sidecar, "10.3.0", DeviceInfo("Xavier", "7.2"))
    paths = write_engine(engine_paths(tmp_path, "k"), b"plan", sidecar)
    assert find_engine(tmp_path, "k") == paths
    assert explicit_engine(paths.engine, "10.3.0", ORIN) == paths.engine
    with pytest.raises(BundleError, match="on sm_87; this device has TensorRT 10.3.0 on sm_90"):
        explicit_engine(paths.engine, "10.3.0", DeviceInfo("H100", "9.0"))
    paths.sidecar.unlink()
    assert find_engine(tmp_path, "k", cache_root=tmp_path / "none") is None  # engine without sidecar: incomplete
    with pytest.raises(BundleError, match="sidecar .* is missing"):
        explicit_engine(paths.engine, "10.3.0", ORIN)
    paths.sidecar.write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_sidecar(paths.sidecar)


# ---- engine build and run (TensorRT + CUDA GPU) ---------------------------------------------------
@pytest.fixture(scope="module")
def fp32_bundle(model, tmp_path_factory):
    _register()
    out = tmp_path_factory.mktemp("trt-fp32") / "b"
    return edgepose.export(model, target="tensorrt", out=out, decode="host", dynamic_batch=True, log=None,
                           max_batch=4, opt_batch=2)


@pytest.mark.tensorrt
@needs_gpu
def test_engine_build_is_cached(fp32_bundle):
    from edgepose.runtimes.tensorrt import build_engine

    path = build_engine(fp32_bundle.path, log=None)
    assert path.parent == fp32_bundle.path / "engines" and path.stat().st_size > 0
    mtime = path.stat().st_mtime_ns
    assert build_engine(fp32_bundle.path, log=None) == path and path.stat().st_mtime_ns == mtime


@pytest.mark.tensorrt
@needs_gpu
def test_engine_matches_onnxruntime_fp32_and_dynamic_batch(fp32_bundle):
    x = np.random.default_rng(0).normal(size=(6, 3, SIZE[1], SIZE[0])).astype(np.float32)
    with edgepose.load(fp32_bundle.path, log=None) as rt, edgepose.load(fp32_bundle.path, backend="onnxruntime") as ref:
        assert rt.input_metadata() == {"input": ((-1, 3, SIZE[1], SIZE[0]), "float32")}
        got, want = rt.infer(x)[0], ref.infer(x)[0]  # 6 > max_batch 4: two chunks
        assert got.shape == want.shape == (6, 17, SIZE[1] // 4, SIZE[0] // 4)
        assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
        np.testing.assert_allclose(rt.infer(x[:1])[0], got[:1], rtol=1e-4, atol=1e-5)
        image = np.random.default_rng(1).integers(0, 255, (120, 90, 3), dtype=np.uint8)
        assert rt(image).keypoints.shape == (1, 17, 3)


@pytest.mark.tensorrt
@needs_gpu
def test_fp16_engine_close_to_onnxruntime(bundles):
    trt, _ = bundles
    x = np.random.default_rng(2).normal(size=(1, 3, SIZE[1], SIZE[0])).astype(np.float32)
    with edgepose.load(trt.path, log=None) as rt, edgepose.load(trt.path, backend="onnxruntime") as ref:
        got, want = rt.infer(x)[0], ref.infer(x)[0]
    assert np.abs(got - want).max() / np.abs(want).max() < 2e-2
    assert rt.engine_path is not None and rt.engine_path.suffix == ".engine"


def test_decoder_layers_pinned_to_fp32_in_reduced_precision_engines(tmp_path):
    """FP16 / INT8 engines keep the in-graph decoder in FP32 (fake TensorRT objects: the names and the calls)."""
    from types import SimpleNamespace

    import onnx

    import edgepose
    from edgepose.models import create
    from edgepose.runtimes.tensorrt.engine import DECODER_PREFIX, pin_decoder_fp32

    b = edgepose.export(create("simplebaseline-mnv2s-edge", weights="default"), target="tensorrt", decode="graph",
                        out=tmp_path / "trt", log=None)
    names = [n.name for n in onnx.load(str(b.model_path)).graph.node]
    decoder = [n for n in names if n.startswith(DECODER_PREFIX)]
    assert decoder and len(decoder) < len(names)  # the prefix finds the decoder and only it

    class Tensor(SimpleNamespace):
        pass

    class Layer:
        def __init__(self, name):
            self.name, self.precision, self.num_outputs, self.types = name, None, 1, {}
            self.type = "constant" if "Constant" in name else "other"
            self.out = "int64" if "ArgMax" in name else "float16"  # index arithmetic is not float data

        def get_output(self, j):
            return Tensor(dtype=self.out)

        def set_output_type(self, j, t):
            self.types[j] = t

    layers = [Layer(n) for n in names]
    flags_ns = SimpleNamespace(OBEY_PRECISION_CONSTRAINTS="obey")
    trt = SimpleNamespace(float32="float32", float16="float16", BuilderFlag=flags_ns,
                          LayerType=SimpleNamespace(CONSTANT="constant"))
    network = SimpleNamespace(num_layers=len(layers), get_layer=lambda i: layers[i])
    flags = []
    config = SimpleNamespace(set_flag=flags.append)
    pinned = [ly for ly in layers if ly.name.startswith(DECODER_PREFIX) and ly.type != "constant" and ly.out != "int64"]
    assert any(ly.out == "int64" for ly in layers if ly.name.startswith(DECODER_PREFIX))
    assert pin_decoder_fp32(trt, network, config) == len(pinned) > 0
    assert flags == ["obey"]
    assert all((ly.precision == "float32") == (ly in pinned) for ly in layers)
    assert all(ly.types == {0: "float32"} for ly in pinned)


def test_tensorrt_versions_other_than_10_are_refused_with_the_reason():
    from edgepose.runtimes.tensorrt import version_problem

    assert version_problem("10.3.0") == ""
    assert "Jetson Nano" in version_problem("8.2.1") and "needs TensorRT 10" in version_problem("8.6.1")
    assert "removed the FP16 / INT8 builder flags" in version_problem("11.0.0")


def test_build_settings_refuse_unknown_flags_and_fp32_on_dla():
    from edgepose.errors import ConfigError
    from edgepose.runtimes.tensorrt.settings import BuildSettings

    profile = {"input": {"min": [1, 3, 128, 96], "opt": [1, 3, 128, 96], "max": [1, 3, 128, 96]}}
    with pytest.raises(ConfigError, match="STRICT_TYPES"):
        BuildSettings(precision="fp16", profile=profile, flags=["FP16", "STRICT_TYPES"])
    with pytest.raises(ConfigError, match="DLA core runs FP16 / INT8 only"):
        BuildSettings(precision="fp32", profile=profile, dla_core=0)
    assert BuildSettings(precision="int8", profile=profile, dla_core=1).flags == ["INT8", "FP16"]


def test_runtime_takes_the_common_threads_option(tmp_path):
    """edgepose.load(bundle, threads=N) is how bench and demo open every backend: TensorRT must accept it."""
    import edgepose
    from edgepose.bundle import read_bundle
    from edgepose.errors import ConfigError
    from edgepose.models import create
    from edgepose.runtimes.tensorrt import TensorRTRuntime

    b = edgepose.export(create("simplebaseline-mnv2s-edge"), target="tensorrt", out=tmp_path / "trt", log=None)
    rt = TensorRTRuntime.from_bundle(read_bundle(b.path), threads=2)
    assert rt.threads == 2 and not rt.is_loaded
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        TensorRTRuntime.from_bundle(read_bundle(b.path), threads=0)


def test_reduced_precision_decodes_dark_on_the_host_by_default():
    from edgepose.export.targets import get_target

    t, dark = get_target("tensorrt"), {"method": "dark"}
    assert t.resolve_decode("auto", "heatmap", dark, "fp32") == "graph"
    assert t.resolve_decode("auto", "heatmap", dark, "fp16") == "host"
    assert t.resolve_decode("auto", "heatmap", dark, "int8") == "host"
    assert t.resolve_decode("auto", "centernet", {}, "int8") == "graph"
    assert t.resolve_decode("graph", "heatmap", dark, "fp16") == "graph"


def test_cli_dla_core_reaches_build_json(tmp_path, capsys):
    from edgepose.cli import main

    out = tmp_path / "dla"
    assert main(["export", "--model", "simplebaseline-mnv2s-edge", "--target", "tensorrt", "--precision", "fp16",
                 "--dla-core", "1", "--out", str(out)]) == 0
    assert json.loads((out / "build.json").read_text())["dla_core"] == 1
    assert main(["export", "--model", "simplebaseline-mnv2s-edge", "--target", "tensorrt", "--dla-core", "0",
                 "--out", str(tmp_path / "fp32")]) != 0
    assert "--precision fp16 or int8" in capsys.readouterr().err and not (tmp_path / "fp32").exists()
