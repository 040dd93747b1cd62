"""Bundles: atomic writes, validation on load (missing, tampered, future version), interrupted exports."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgepose
from edgepose.bundle import MANIFEST, SCHEMA_VERSION, bundle_writer, read_bundle, write_manifest
from edgepose.errors import BundleError


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory):
    from edgepose.models import create

    out = tmp_path_factory.mktemp("b") / "sb"
    edgepose.export(create("simplebaseline-mnv2s-edge"), target="onnx", out=out, decode="host", log=None)
    return out


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_manifest_records_what_a_device_needs(onnx_bundle):
    m = json.loads((onnx_bundle / MANIFEST).read_text())
    assert m["schema_version"] == SCHEMA_VERSION and m["target"] == "onnx" and m["backend"] == "onnxruntime"
    assert m["spec"]["input"]["size"] == [96, 128] and m["spec"]["input"]["layout"] == "NCHW"
    assert m["spec"]["kind"] == "heatmap" and m["spec"]["keypoints"] == "coco"
    assert m["model"]["name"] == "simplebaseline-mnv2s-edge" and len(m["model"]["source_sha256"]) == 64
    assert set(m["files"]) == {"model.onnx", "golden.npz"} and m["parity"]["passed"] is True
    assert m["backend_version"] and m["edgepose_version"] == edgepose.__version__


def test_tampered_model_is_refused(onnx_bundle, tmp_path):
    b = _copy(onnx_bundle, tmp_path / "t")
    data = bytearray((b / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (b / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 .* does not match"):
        edgepose.load(b)


def test_truncated_model_is_refused(onnx_bundle, tmp_path):
    b = _copy(onnx_bundle, tmp_path / "t")
    data = (b / "model.onnx").read_bytes()
    (b / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(BundleError, match="truncated or replaced"):
        edgepose.load(b)


def test_corrupt_model_with_matching_hash_gives_a_load_error(onnx_bundle, tmp_path):
    b = _copy(onnx_bundle, tmp_path / "t")
    (b / "model.onnx").write_bytes(b"\x00garbage" * 100)
    m = json.loads((b / MANIFEST).read_text())
    (b / MANIFEST).unlink()
    write_manifest(b, m)  # re-hash: the file is "intact" but not a model
    with pytest.raises(BundleError, match="onnxruntime cannot load"):
        edgepose.load(b)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(schema_version=SCHEMA_VERSION + 1), "upgrade edgepose"),
    (lambda m: m.pop("spec"), "lacks required keys"),
    (lambda m: m.update(schema_version="1"), "expected an integer from 1"),
    (lambda m: m["files"]["model.onnx"].pop("sha256"), "expected \\{'sha256'"),
    (lambda m: m.update(files="x"), "'files' is str"),
    (lambda m: m.update(model_file="../b/model.onnx"), "is not listed under 'files'"),
    (lambda m: m.update(files={"../b/model.onnx": m["files"]["model.onnx"]}), "outside the bundle"),
    (lambda m: m.update(spec=None), "malformed 'spec'"),
    (lambda m: m["spec"]["input"].update(size="big"), "bad 'spec': input size"),
    (lambda m: m["spec"]["input"].update(std=[0, 0, 0]), "bad 'spec': input std"),
    (lambda m: m["spec"]["input"].update(mean=[float("nan"), 1, 1]), "bad 'spec': input mean"),
    (lambda m: m["spec"]["codec"].update(kind="nope"), "bad 'spec'"),
])
def test_bad_manifests(onnx_bundle, tmp_path, edit, match):
    b = _copy(onnx_bundle, tmp_path / "t")
    m = json.loads((b / MANIFEST).read_text())
    edit(m)
    (b / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match=match):
        read_bundle(b)


def test_missing_and_unparseable(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        read_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="has no manifest.json"):
        read_bundle(tmp_path / "empty")
    (tmp_path / "empty" / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(tmp_path / "empty")


def test_bundle_permissions_follow_the_umask(onnx_bundle):
    """mkdtemp's 0700 must not survive the rename: a deploy user or service reads the bundle."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert onnx_bundle.stat().st_mode & 0o777 == 0o777 & ~mask
    assert (onnx_bundle / "model.onnx").stat().st_mode & 0o777 == 0o666 & ~mask


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch):
    from edgepose.export.targets import TARGETS
    from edgepose.models import create

    def interrupted_build(ctx):
        (ctx.dir / "model.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(TARGETS["onnx"], "build", interrupted_build)
    with pytest.raises(KeyboardInterrupt):
        edgepose.export(create("simplebaseline-mnv2s-edge"), target="onnx", out=tmp_path / "b", log=None)
    assert list(tmp_path.iterdir()) == []


def test_failed_reexport_keeps_the_previous_bundle(onnx_bundle, tmp_path):
    b = _copy(onnx_bundle, tmp_path / "keep")
    before = (b / MANIFEST).read_text()
    with pytest.raises(RuntimeError), bundle_writer(b) as tmp:
        (tmp / "x").write_text("partial")
        raise RuntimeError("boom")
    assert (b / MANIFEST).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_refuses_to_overwrite_a_non_bundle_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(BundleError, match="not an edgepose bundle"), bundle_writer(tmp_path / "mine"):
        pass
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_loaded_runtime_matches_infer(onnx_bundle):
    with edgepose.load(onnx_bundle, threads=1) as rt:
        assert rt.backend == "onnxruntime"
        (name, (shape, dtype)), = rt.input_metadata().items()
        assert shape == (1, 3, 128, 96) and dtype == "float32"
        out = rt.infer(np.zeros((3, 3, 128, 96), np.float32))  # batch 3 on a batch-1 model: split by the base
        assert out[0].shape == (3, 17, 32, 24)


def test_target_all_skips_targets_without_the_precision(tmp_path, monkeypatch):
    import edgepose.export.api as api
    from edgepose.models import create

    calls, lines = [], []
    monkeypatch.setattr(api, "_export_one", lambda model, tgt, *, out, **kw: calls.append((tgt.name, out.name)))
    api.export(create("simplebaseline-mnv2s-edge"), target="all", precision="fp16", out=tmp_path, log=lines.append)
    assert [c[0] for c in calls] == ["openvino", "tflite", "tensorrt"]
    assert all(name == out for name, out in calls)
    assert any("onnx skipped" in ln for ln in lines)


def test_info_shows_and_verifies_a_bundle(onnx_bundle, tmp_path, capsys):
    from edgepose.cli import main

    assert main(["info", str(onnx_bundle)]) == 0
    out = capsys.readouterr().out
    assert "target: onnx on onnxruntime" in out and "parity vs PyTorch: passed" in out and "sha256 verified" in out
    assert "golden samples: 3 (" in out and "edgepose verify" in out
    from edgepose.models import create
    from edgepose.models.cost import model_cost

    cost = model_cost(create("simplebaseline-mnv2s-edge"))  # the bundle's input is the model's own 96x128
    assert f"cost: {cost.gmacs:.3f} GMAC (multiply-accumulates of one batch-1 pass at 96x128), " \
           f"{cost.params / 1e6:.2f} M parameters" in out
    assert main(["info", str(onnx_bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == "onnx"
    b = _copy(onnx_bundle, tmp_path / "t")
    with open(b / "model.onnx", "r+b") as f:
        f.seek(200)
        f.write(b"\x00tampered\x00")
    assert main(["info", str(b)]) != 0
    assert "sha256" in capsys.readouterr().err
