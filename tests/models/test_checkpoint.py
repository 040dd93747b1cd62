"""Checkpoints: atomic save, self-describing reload, safe loading of foreign files."""

from __future__ import annotations

import pytest
import torch

from edgepose.errors import CheckpointError, ConfigError
from edgepose.models import create
from edgepose.models.checkpoint import load_checkpoint, load_state_dict_file, save_checkpoint


def test_save_and_reload_rebuilds_the_same_model(tmp_path):
    model = create("simplebaseline-mnv2s-edge").eval()
    path = save_checkpoint(model, tmp_path / "ck.pt", info={"note": "x"})
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temp file left behind
    again = load_checkpoint(path)
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert again.edgepose_meta.config["checkpoint_info"]["note"] == "x"
    # a loaded model (fine-tuned further) saves and reloads again: its load record is not a model argument
    third = load_checkpoint(save_checkpoint(again, tmp_path / "ck2.pt", info={"note": "y"}))
    assert third.edgepose_meta.config["checkpoint_info"]["note"] == "y"


def test_official_style_checkpoint_with_module_prefix_loads_strictly(tmp_path):
    src = create("simplebaseline-r18")
    sd = {"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}
    torch.save(sd, tmp_path / "official.pth")
    dst = create("simplebaseline-r18")
    load_state_dict_file(dst, tmp_path / "official.pth")
    assert torch.equal(dst.final_layer.weight, src.final_layer.weight)


def test_pickled_whole_model_is_refused_with_instructions(tmp_path):
    torch.save(create("simplebaseline-mnv2s-edge"), tmp_path / "whole.pt")
    with pytest.raises(CheckpointError, match=r"torch.save\(model.state_dict\(\)"):
        load_state_dict_file(create("simplebaseline-mnv2s-edge"), tmp_path / "whole.pt")


def test_mismatched_state_dict_names_the_problem(tmp_path):
    torch.save(create("simplebaseline-r18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="missing .*unexpected"):
        load_state_dict_file(create("simplebaseline-mnv2"), tmp_path / "r18.pth")


@pytest.mark.parametrize("payload, match", [([1, 2, 3], "expected a state_dict"),
                                            ({"a": 1}, "is not a tensor")])
def test_non_state_dict_files(tmp_path, payload, match):
    torch.save(payload, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=match):
        load_state_dict_file(create("simplebaseline-r18"), tmp_path / "x.pt")


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_default_weights_only_for_models_that_have_them():
    with pytest.raises(ConfigError, match="no embedded default weights"):
        create("simplebaseline-r50", weights="default")
