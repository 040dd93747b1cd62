"""The conversion cache: what changes the key, and a second TFLite export that copies instead of converting."""

from __future__ import annotations

import pytest
import torch

import edgepose
from edgepose.export import convert_cache
from edgepose.export.targets import tflite
from edgepose.models import create


def _small():
    torch.manual_seed(0)
    return create("simplebaseline-mnv2s-edge", input_size=(64, 64), width_mult=0.25, head_channels=8).eval()


def test_the_key_follows_weights_code_and_sample():
    model, sample = _small(), torch.zeros(1, 64, 64, 3)
    key = convert_cache.cache_key(model, sample, converter="torch", extra={})
    assert key == convert_cache.cache_key(_small(), sample, converter="torch", extra={})  # same build, same key
    assert key != convert_cache.cache_key(model, sample + 1, converter="torch", extra={})
    assert key != convert_cache.cache_key(model, sample, converter="torch", extra={"decode": "graph"})
    with torch.no_grad():
        model.final_layer.bias[3] += 1e-6
    assert key != (bumped := convert_cache.cache_key(model, sample, converter="torch", extra={}))
    model.final_layer.forward = lambda x: x  # an instance-level patch is code too
    assert bumped != convert_cache.cache_key(model, sample, converter="torch", extra={})


def test_off_by_default_and_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    monkeypatch.delenv(convert_cache.ENV, raising=False)
    src = tmp_path / "a.bin"
    src.write_bytes(b"x")
    assert not convert_cache.enabled()
    convert_cache.store("k", ".bin", src)
    assert not convert_cache.fetch("k", ".bin", tmp_path / "b.bin")
    monkeypatch.setenv(convert_cache.ENV, "1")
    monkeypatch.setenv("EDGEPOSE_CACHE", str(src))  # a file, not a folder: storing fails quietly
    convert_cache.store("k", ".bin", src)
    assert not convert_cache.fetch("k", ".bin", tmp_path / "b.bin")


@pytest.mark.slow
@pytest.mark.tflite
def test_second_export_copies_the_first_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv(convert_cache.ENV, "1")
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    model = _small()
    first = edgepose.export(model, target="tflite", out=tmp_path / "a", log=None)
    assert len(list((tmp_path / "cache" / "convert").glob("*.tflite"))) == 1

    def refuse(*_a, **_k):
        raise AssertionError("converted again")

    monkeypatch.setattr(tflite, "litert_convert", refuse)
    second = edgepose.export(model, target="tflite", out=tmp_path / "b", log=None)
    assert second.manifest["parity"]["passed"]
    assert first.model_path.read_bytes() == second.model_path.read_bytes()
    with torch.no_grad():
        model.final_layer.bias[0] += 0.5  # new weights: a new key, so it converts (and here refuses)
    with pytest.raises(AssertionError, match="converted again"):
        edgepose.export(model, target="tflite", out=tmp_path / "c", log=None)
