"""OpenVINO target and runtime: IR export, fp32 parity with PyTorch, host vs graph decode, options, errors.

Exports cost 2-4 s each here, so the registry is sampled: the two small defaults (heatmap and CenterNet,
each with host and graph decode) as IR, plus SimpleBaseline-R18 (the ConvTranspose+BN head that the
MobileNet '-edge' heads lack) as an ONNX bundle that OpenVINO reads directly.

Weights are random but made to behave (see ``_realistic``): untouched, the zoo's init gives ~1e-9
heatmaps, on which any error looks small and every argmax is a tie. Keypoints are still compared only
where the argmax is not tied.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgepose
from edgepose.bundle import read_bundle, write_manifest
from edgepose.errors import BundleError, ConfigError, UnknownNameError
from edgepose.runtimes import openvino as ov_backend
from edgepose.runtimes import unavailable_reason
from edgepose.testing import distinct_peaks

pytestmark = [pytest.mark.openvino,
              pytest.mark.skipif(not ov_backend.is_available(), reason=f"openvino missing: "
                                 f"{unavailable_reason('openvino')}")]

SB, CN, R18 = "simplebaseline-mnv2s-edge", "centernet-mnv2s", "simplebaseline-r18"
EXPORTS = {  # key → (model name, create kwargs, target, decode)
    "sb_host": (SB, {}, "openvino", "host"),
    "sb_graph": (SB, {}, "openvino", "graph"),
    "cn_host": (CN, {}, "openvino", "host"),
    "cn_graph": (CN, {}, "openvino", "graph"),
    "r18_onnx": (R18, {"input_size": (64, 96)}, "onnx", "host"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """key → (torch model, bundle dir); each export runs once per module, on first use."""
    import torch

    from edgepose.export.targets import TARGETS, register_target
    from edgepose.export.targets.openvino import TARGET
    from edgepose.models import create

    if "openvino" not in TARGETS:  # registration is all-or-nothing while other targets are being written
        register_target(TARGET)
    root, cache = tmp_path_factory.mktemp("ov-bundles"), {}

    def get(key: str):
        if key not in cache:
            name, kw, target, decode = EXPORTS[key]
            torch.manual_seed(0)
            model = _realistic(create(name, **kw)).eval()
            edgepose.export(model, target=target, out=root / key, decode=decode, parity=False, log=lambda *a: None)
            cache[key] = (model, root / key)
        return cache[key]

    return get


def _realistic(model):
    """Make random weights behave like trained ones: He-normal weights where the zoo initialises a conv
    near zero (std < 0.01), and BatchNorm statistics measured on noise, so that activations neither
    vanish (MobileNet's eval-mode BN with unit running variance shrinks them ~10x per stage) nor tie."""
    import torch

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and float(mod.weight.std()) < 0.01:
                fan_in = mod.weight[0].numel() if isinstance(mod, torch.nn.Conv2d) else mod.weight[:, 0].numel()
                mod.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None  # cumulative average over the calibration batches
        model.train()
        model(torch.randn(2, 3, 64, 64))  # fully convolutional: a small noise batch sets the statistics
    return model.eval()


def _torch_outputs(model, x: np.ndarray) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        out = model(torch.from_numpy(x))
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |a|, for a reference ``a`` of meaningful size."""
    assert np.abs(a).max() > 1e-3, "reference outputs near zero: a relative error would mean nothing"
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(a).max())


def _random_input(rt, seed: int = 0) -> np.ndarray:
    (shape, _), = rt.input_metadata().values()
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ---- export --------------------------------------------------------------------------------
def test_ir_bundle_is_fp32_and_listed(exported):
    _, path = exported("sb_host")
    b = read_bundle(path)
    assert (b.target, b.backend, b.manifest["model_file"]) == ("openvino", "openvino", "model.xml")
    assert set(b.manifest["files"]) == {"model.xml", "model.bin", "golden.npz"}
    assert b.manifest["openvino"]["inference_precision"] == "f32"
    xml = (path / "model.xml").read_text()
    assert 'element_type="f16"' not in xml and 'element_type="f32"' in xml  # save_model did not compress
    assert set(b.manifest["openvino"]["weights"]) == {"f32"}


@pytest.mark.parametrize("key", ["sb_host", "cn_host", "sb_graph"])
def test_outputs_match_pytorch(exported, key):
    from edgepose.export.onnx import wrap_for_export

    model, path = exported(key)
    with edgepose.load(path) as rt:
        assert rt.backend == read_bundle(path).backend == "openvino"
        assert rt.effective_precision == "f32"
        x = _random_input(rt)
        got = rt.infer(x)
        want = _torch_outputs(wrap_for_export(model, rt.spec.decode), x)
    assert len(got) == len(want)
    if rt.spec.decode == "graph":  # keypoints (N, K, 3): scores are continuous where no second peak lowers them
        keep = distinct_peaks(_torch_outputs(model, x)[0], want[0][..., 2])
        assert keep.any()
        got, want = [got[0][..., 2][keep]], [want[0][..., 2][keep]]
    for g, w in zip(got, want):
        assert g.shape == w.shape and _rel(w, g) <= 1e-4


def test_parity_runtime_is_forced_to_f32(exported):
    from edgepose.export.parity import check_parity
    from edgepose.export.targets.openvino import TARGET
    from edgepose.runtimes.torch import TorchRuntime

    model, path = exported("sb_host")
    assert TARGET.parity_options()["inference_precision"] == "f32"
    bundle = read_bundle(path)
    with TARGET.parity_runtime(bundle) as cand:
        assert cand.effective_precision == "f32"
        ref = TorchRuntime(model, bundle.spec()).load()
        report = check_parity(ref, cand, [_random_input(cand, s) for s in range(2)], score_floor=-np.inf)
    assert report.passed and 0 < report.raw_rel_error, report.summary()


# ---- host vs graph decode ------------------------------------------------------------------
def _untied(heatmaps: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """(N, K, H, W) → (N, K) mask of joints whose heatmap maximum beats the runner-up by ``margin``."""
    flat = np.sort(heatmaps.reshape(*heatmaps.shape[:2], -1), axis=-1)
    return (flat[..., -1] - flat[..., -2]) > margin * (np.abs(flat[..., -1]) + 1e-6)


def test_heatmap_graph_decode_matches_host(exported):
    _, host_path = exported("sb_host")
    _, graph_path = exported("sb_graph")
    with edgepose.load(host_path) as host, edgepose.load(graph_path) as graph:
        x = np.concatenate([_random_input(host, s) for s in range(3)])
        heatmaps = host.infer(x)[0]
        # the graph runs the zoo's DARK refinement too: the reference is the graph bundle's own codec
        # applied to the host bundle's heatmaps
        assert (host.spec.codec["method"], graph.spec.codec["method"]) == ("dark", "dark")
        from_host, from_graph = graph.codec.decode(heatmaps), graph.infer(x)[0]
        image = np.random.default_rng(1).integers(0, 255, (200, 150, 3), np.uint8)
        poses_host, poses_graph = host(image), graph(image)
    mask = _untied(heatmaps)
    assert mask.sum() >= 10  # enough joints to mean something
    np.testing.assert_allclose(from_graph[..., 2], from_host[..., 2], rtol=1e-5, atol=1e-6)
    d = np.linalg.norm(from_graph[..., :2] - from_host[..., :2], axis=-1)
    assert d[mask].max() <= 1e-3
    assert poses_graph.keypoints.shape == poses_host.keypoints.shape == (1, 17, 3)
    np.testing.assert_allclose(poses_graph.keypoints[..., 2], poses_host.keypoints[..., 2], rtol=1e-5, atol=1e-6)


def test_centernet_graph_decode_matches_host(exported):
    _, host_path = exported("cn_host")
    _, graph_path = exported("cn_graph")
    with edgepose.load(host_path) as host, edgepose.load(graph_path) as graph:
        x = _random_input(host)
        kps_h, scores_h, boxes_h = host.codec.decode(tuple(host.infer(x)))
        kps_g, scores_g, boxes_g = graph.infer(x)[:3]
        image = np.random.default_rng(2).integers(0, 255, (240, 320, 3), np.uint8)
        poses_host, poses_graph = host(image), graph(image)
    np.testing.assert_allclose(scores_g, scores_h, rtol=1e-5, atol=1e-6)
    distinct = np.concatenate([[True], np.abs(np.diff(scores_h[0])) > 1e-4])  # slots not tied with the previous
    distinct &= np.append(distinct[1:], True) & (scores_h[0] > 0)
    assert distinct.sum() >= 3
    np.testing.assert_allclose(boxes_g[0, distinct], boxes_h[0, distinct], atol=1e-3)
    np.testing.assert_allclose(kps_g[0, distinct], kps_h[0, distinct], atol=1e-3)
    assert len(poses_graph) == len(poses_host)


# ---- runtime options -----------------------------------------------------------------------
def test_precision_options(exported):
    _, path = exported("sb_host")
    with edgepose.load(path) as rt32:
        x = _random_input(rt32)
        ref = rt32.infer(x)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a CPU without bf16 computes in f32 and says so
        with edgepose.load(path, inference_precision="bf16") as rt16:
            assert rt16.effective_precision in ("bf16", "f32")
            low = rt16.infer(x)[0]
    # bf16 keeps ~3 significant digits; through 19 random MobileNet blocks the error grows to tens of
    # percent of the peak (why fp32 bundles default to f32), yet the maps stay the same maps
    assert np.isfinite(low).all() and np.corrcoef(ref.ravel(), low.ravel())[0, 1] > 0.9
    if rt16.effective_precision == "bf16":
        assert _rel(ref, low) > 1e-3  # it really ran in bf16
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with edgepose.load(path, inference_precision="f16") as rt:  # CPUs without f16 maths substitute
            substituted = rt.effective_precision != "f16"
    assert substituted == any("not the requested f16" in str(w.message) for w in caught)
    with edgepose.load(path, inference_precision="auto", threads=1, hint="throughput") as rt:
        assert rt.compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert str(rt.compiled.get_property("PERFORMANCE_HINT")).endswith("THROUGHPUT")
        assert rt.infer(x)[0].shape == ref.shape


def test_onnx_bundle_runs_on_openvino(exported):
    model, path = exported("r18_onnx")
    assert read_bundle(path).backend == "onnxruntime"
    with edgepose.load(path, backend="openvino") as rt:
        assert rt.backend == "openvino" and rt.model_path.suffix == ".onnx"
        assert rt.effective_precision == "f32"
        x = _random_input(rt)
        assert _rel(_torch_outputs(model, x)[0], rt.infer(x)[0]) <= 1e-4


@pytest.mark.parametrize("options, match", [
    ({"device": "TPU"}, "device must be one of CPU.*got 'TPU'"),
    ({"device": "cpu"}, "got 'cpu'"),
    ({"threads": 0}, r"threads must be >= 1 \(an integer; unset or None: the default\), got 0"),
    ({"threads": "2"}, "got '2'"),
    ({"hint": "fast"}, "hint must be one of latency, throughput, got 'fast'"),
    ({"inference_precision": "fp32"}, "inference_precision must be one of f32, bf16, f16, auto, got 'fp32'"),
])
def test_bad_options_raise_config_error(exported, options, match):
    _, path = exported("sb_host")
    with pytest.raises(ConfigError, match=match) as info:
        edgepose.load(path, **options)
    assert "\n" not in str(info.value)


def test_unknown_option_suggests(exported):
    _, path = exported("sb_host")
    with pytest.raises(UnknownNameError, match="did you mean 'threads'"):
        edgepose.load(path, thread=2)


def test_missing_device_lists_available(exported):
    import openvino as ov

    available = ov.Core().available_devices
    absent = next((d for d in ("GPU", "NPU") if not any(a.split(".")[0] == d for a in available)), None)
    if absent is None:
        pytest.skip("GPU and NPU both present")
    _, path = exported("sb_host")
    with pytest.raises(ConfigError, match=f"device '{absent}' is not available here; available devices: "
                                          f"{available[0]}"):
        edgepose.load(path, device=absent)


def test_unsupported_precision_is_refused(exported, tmp_path):
    from edgepose.models import create

    exported("sb_host")  # registers the target
    with pytest.raises(ConfigError, match="precision 'int4': expected one of fp32, fp16, int8"):
        edgepose.export(create(SB), target="openvino", precision="int4", out=tmp_path / "b")
    assert not (tmp_path / "b").exists()


# ---- corrupt bundles -----------------------------------------------------------------------
def _damaged_copy(src: Path, dst: Path, name: str, keep: float) -> Path:
    shutil.copytree(src, dst)
    data = (dst / name).read_bytes()
    (dst / name).write_bytes(data[: int(len(data) * keep)])
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest.pop("files")
    write_manifest(dst, manifest)  # hashes now match: only OpenVINO itself can notice
    return dst


@pytest.mark.parametrize("name, keep, match", [
    ("model.bin", 0.5, "Incorrect weights in bin file"),
    ("model.xml", 0.5, r"offset \d+"),  # pugixml: "Start-end tags mismatch at offset N" or similar
])
def test_truncated_model_raises_bundle_error(exported, tmp_path, name, keep, match):
    _, path = exported("sb_host")
    bad = _damaged_copy(path, tmp_path / "bad", name, keep)
    with pytest.raises(BundleError, match=match) as info:
        edgepose.load(bad)
    msg = str(info.value)
    assert "\n" not in msg and "Exception from" not in msg and str(bad / "model.xml") in msg


def test_ov_message_skips_source_locations():
    exc = RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'x' failed at a.cpp:9:\n"
                       "Incorrect weights in bin file!\n\n")
    assert ov_backend.ov_message(exc) == "Incorrect weights in bin file!"
    assert ov_backend.ov_message(RuntimeError("")) == "RuntimeError"
