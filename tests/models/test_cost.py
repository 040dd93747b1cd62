"""Parameters and multiply-accumulates (``edgepose.models.cost``) and ``edgepose models --cost``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgepose.cli import main
from edgepose.errors import ConfigError
from edgepose.models import create
from edgepose.models.cost import model_cost


class _Layers(nn.Module):
    """One of each counted layer on a 12 x 10 (width x height) input, every count worked out by hand."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)  # 8 * 10 * 12 outputs x 3 * 3 * 3 = 25,920
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # 960 outputs x 9 = 8,640
        self.grouped = nn.Conv2d(8, 8, 1, groups=2)  # 960 outputs x 4 = 3,840
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)  # 960 inputs x 2 * 2 * 4 = 15,360
        self.fc = nn.Linear(24, 5)  # 4 * 20 * 5 outputs x 24 = 9,600
        self.norm = nn.BatchNorm2d(8)  # not counted

    def forward(self, x):
        return self.fc(self.up(self.grouped(self.dw(self.norm(self.conv(x))))))


def test_each_layer_kind_is_counted_as_worked_out_by_hand():
    model = _Layers().train()
    cost = model_cost(model, input_size=(12, 10))
    assert cost.by_kind == {"conv": 25_920 + 3_840, "depthwise": 8_640, "deconv": 15_360, "linear": 9_600}
    assert cost.macs == 63_360 and cost.input_size == (12, 10)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert model.training  # the caller's mode is restored
    assert not any(m._forward_hooks for m in model.modules())  # no hook left behind


def test_hrnet_w32_matches_its_published_size():
    # the HRNet paper gives 28.5 M parameters and 7.1 GFLOPs (multiply-adds of the convolutions) at 256 x 192;
    # mmpose's model zoo lists 7.7 G for the same model
    cost = model_cost(create("hrnet-w32"))
    assert cost.input_size == (192, 256)
    assert cost.params / 1e6 == pytest.approx(28.5, abs=0.1)
    assert 7.1 <= cost.gmacs <= 7.8


def test_a_model_without_meta_needs_an_input_size():
    with pytest.raises(ConfigError, match="no edgepose_meta; pass input_size"):
        model_cost(nn.Conv2d(3, 3, 1))
    with pytest.raises(ConfigError, match=r"got \(0, 8\)"):
        model_cost(nn.Conv2d(3, 3, 1), input_size=(0, 8))


def test_models_cost_prints_the_same_numbers(capsys):
    assert main(["models", "mnv2s-edge", "--cost"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["simplebaseline-mnv2s-edge"]
    cost = model_cost(create("simplebaseline-mnv2s-edge"))
    assert lines[0].split()[1:6] == ["96x128", f"{cost.params / 1e6:.2f}", "M", f"{cost.gmacs:.3f}", "GMAC"]


def test_models_with_a_pattern_nothing_matches_is_an_error(capsys):
    assert main(["models", "resnet-9000"]) == 2
    assert capsys.readouterr().err.strip() == ("error: no registered model name contains 'resnet-9000'; expected "
                                              "part of a registered name (`edgepose models` lists them all)")


def test_the_cost_pass_leaves_weights_alone():
    model = create("simplebaseline-mnv2s-edge").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_cost(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # eval mode: batch-norm statistics untouched
