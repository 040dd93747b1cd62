"""HRNet: the official checkpoints' key / shape lists load with strict=True; shapes and bad configs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from edgepose.errors import ConfigError
from edgepose.models import create
from edgepose.models.hrnet import HRNetTrunk

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hrnet"


def _official(width: str) -> dict[str, tuple[int, ...]]:
    """key → shape of the official model's state_dict, in its order (num_batches_tracked: shape ())."""
    out = {}
    with gzip.open(FIXTURES / f"official_{width}_256x192_keys.txt.gz", "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            key, *shape = line.split()
            out[key] = tuple(int(v) for v in shape[0].split("x")) if shape else ()
    return out


@pytest.mark.parametrize("width, params", [("w32", 28_536_113), ("w48", 63_595_745)])
def test_official_checkpoint_layout_loads_strict(width, params):
    official = _official(width)
    model = create(f"hrnet-{width}")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(official)  # same keys, same order
    assert ours == official, [k for k in official if ours.get(k) != official[k]][:5]
    fake = {k: torch.full(s, 0.5) if s else torch.tensor(7) for k, s in official.items()}
    model.load_state_dict(fake, strict=True)
    assert float(model.final_layer.weight.detach().mean()) == 0.5
    assert sum(p.numel() for p in model.parameters()) == params  # the paper's 28.5 M / 63.6 M


def test_heatmaps_at_stride_4_for_non_square_inputs():
    model = create("hrnet-w32", input_size=(128, 192)).eval()
    meta = model.edgepose_meta
    assert meta.kind == "heatmap" and meta.codec["heatmap_size"] == [32, 48]
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 192, 128))
    assert tuple(out.shape) == (2, 17, 48, 32)


def test_small_trunk_keeps_every_resolution():
    trunk = HRNetTrunk(width=8, num_blocks=1, num_modules=(1, 1, 1), stem_blocks=1).eval()
    assert len(trunk.stage4[0].branches) == 4 and len(trunk.stage4[0].fuse_layers) == 1  # last module: one output
    with torch.no_grad():
        feat = trunk.forward_features(torch.zeros(1, 3, 64, 96))
    assert tuple(feat.shape) == (1, 8, 16, 24) and trunk.out_channels == 8


@pytest.mark.parametrize("kw, match", [(dict(width=0), "width"), (dict(num_modules=(1, 1)), "num_modules"),
                                       (dict(num_blocks=0), "num_blocks")])
def test_bad_trunk_config_is_one_line(kw, match):
    with pytest.raises(ConfigError, match=match) as err:
        HRNetTrunk(**kw)
    assert "\n" not in str(err.value)


def test_bad_input_size_is_one_line():
    with pytest.raises(ConfigError, match="multiples of 32"):
        create("hrnet-w32", input_size=(190, 256))
