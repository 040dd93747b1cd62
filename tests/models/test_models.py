"""Registry-driven conformance tests: every registered model gets shape, training-step and name checks."""

from __future__ import annotations

import pytest
import torch

from edgepose.data.sources import resolve_dataset
from edgepose.errors import ConfigError, UnknownNameError
from edgepose.heads import get_head, trainable_kinds
from edgepose.models import create, list_models
from edgepose.train.losses import centernet_loss, heatmap_mse, simcc_kl

SMALL = (64, 96)  # (w, h): every model accepts multiples of 32; small keeps the suite fast


def _targets_for(model, out, x):
    g = torch.Generator().manual_seed(0)
    if model.edgepose_meta.kind == "heatmap":
        return torch.rand(out.shape, generator=g) * 0.5, torch.ones(out.shape[:2])
    if model.edgepose_meta.kind == "simcc":
        bins = out[0].shape[-1] + out[1].shape[-1]
        return torch.rand(*out[0].shape[:2], bins, generator=g) ** 8, torch.ones(out[0].shape[:2])  # mostly ~0
    n, _, h, w = out[0].shape
    k = out[4].shape[1]
    hm = torch.zeros(n, 1, h, w)
    hm[:, :, h // 2, w // 2] = 1
    return {"center_heatmap": hm, "center_offset": torch.full((n, 2, h, w), 0.3),
            "box_size": torch.full((n, 2, h, w), 5.0), "center_mask": hm.clone(),
            "kpt_offset": torch.rand(n, 2 * k, h, w, generator=g), "kpt_offset_mask": hm.expand(n, 2 * k, h, w),
            "kpt_heatmap": hm.expand(n, k, h, w).clone(), "kpt_subpixel": torch.full((n, 2, h, w), 0.5),
            "kpt_subpixel_mask": hm.clone()}


def _loss(model, out, targets):
    if model.edgepose_meta.kind == "heatmap":
        return heatmap_mse(out, *targets)
    if model.edgepose_meta.kind == "simcc":
        return simcc_kl(out, *targets)
    return centernet_loss(out, targets)[0]


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes(name):
    model = create(name, input_size=SMALL).eval()
    meta = model.edgepose_meta
    assert meta.name == name and meta.input_size == SMALL
    with torch.no_grad():
        out = model(torch.randn(2, 3, SMALL[1], SMALL[0]))
    if meta.kind == "heatmap":
        assert out.shape == (2, 17, SMALL[1] // 4, SMALL[0] // 4)
    elif meta.kind == "simcc":  # split ratio 2: two bins per input pixel on each axis
        assert out[0].shape == (2, 17, SMALL[0] * 2) and out[1].shape == (2, 17, SMALL[1] * 2)
    elif meta.codec["kind"].startswith("movenet"):  # centre, [box_scale, box_offset,] regress, heatmap, offset
        channels = [o.shape[1] for o in out]
        assert channels == ([1, 34, 17, 34] if meta.codec["kind"] == "movenet" else [1, 2, 2, 34, 17, 34])
        assert all(o.shape[2:] == (SMALL[1] // 4, SMALL[0] // 4) for o in out)
    elif meta.kind == "centernet":
        channels = [o.shape[1] for o in out]
        assert channels == [1, 2, 2, 34, 17, 2]
        assert all(o.shape[2:] == (SMALL[1] // 4, SMALL[0] // 4) for o in out)
    else:  # the other heads: as many raw outputs as the head names, maps at a stride of the input
        head = get_head(meta.kind)
        assert len(out) == len(head.output_names(meta.codec, "host"))
        for o in out:
            assert o.shape[0] == 2 and SMALL[1] % o.shape[2] == 0 and SMALL[0] % o.shape[3] == 0
            assert SMALL[1] // o.shape[2] == SMALL[0] // o.shape[3] and torch.isfinite(o).all()


TRAINABLE = [n for n in list_models() if create(n).edgepose_meta.codec["kind"] in trainable_kinds()]


@pytest.mark.parametrize("name", TRAINABLE)
def test_one_training_step_lowers_the_loss(name):
    torch.manual_seed(0)
    model = create(name, input_size=SMALL).train()
    if model.edgepose_meta.kind not in ("heatmap", "simcc", "centernet") or hasattr(model, "forward_train"):
        return _one_step_through_the_head(model)
    x = torch.randn(2, 3, SMALL[1], SMALL[0])
    targets = _targets_for(model, model(x), x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = _loss(model, model(x), targets)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = _loss(model, model(x), targets)
    assert float(after) < float(before)


def test_simplebaseline_names_match_the_original_implementation():
    keys = set(create("simplebaseline-r50").state_dict())
    tops = {k.split(".")[0] for k in keys}
    assert tops == {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "deconv_layers", "final_layer"}
    for k in ("layer4.2.conv3.weight", "layer1.0.downsample.1.running_var", "deconv_layers.0.weight",
              "deconv_layers.1.running_mean", "deconv_layers.6.weight", "deconv_layers.7.num_batches_tracked",
              "final_layer.weight", "final_layer.bias"):
        assert k in keys, k
    assert "deconv_layers.0.bias" not in keys  # the original deconvs have no bias


@pytest.mark.parametrize("name, backbone_params, prefixes", [
    # torchvision's resnet18 / mobilenet_v2 parameter counts minus their classifiers
    ("simplebaseline-r18", 11_689_512 - 513_000, ("conv1", "bn1", "layer")),
    ("simplebaseline-mnv2", 3_504_872 - 1_281_000, ("features",)),
])
def test_backbones_have_torchvision_sizes_and_names(name, backbone_params, prefixes):
    model = create(name)
    n = sum(p.numel() for k, p in model.named_parameters() if k.startswith(prefixes))
    assert n == backbone_params
    if "mnv2" in name:
        keys = set(model.state_dict())
        assert {"features.0.0.weight", "features.1.conv.0.0.weight", "features.2.conv.1.0.weight",
                "features.18.1.running_mean"} <= keys


def test_simplebaseline_r50_parameter_count_matches_the_paper():
    # Xiao et al. report 34.0 M parameters for SimpleBaseline ResNet-50 at 256x192.
    n = sum(p.numel() for p in create("simplebaseline-r50").parameters())
    assert 33.9e6 < n < 34.1e6


def test_centernet_head_names():
    keys = {k.split(".")[0] for k in create("centernet-r18").state_dict()}
    assert {"hm", "reg", "wh", "hps", "hm_hp", "hp_offset", "neck", "layer4"} <= keys


def test_unknown_model_suggests_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'simplebaseline-r18'"):
        create("simplebaseline-r81")


def test_wrong_keypoint_count_is_refused():
    with pytest.raises(ConfigError, match="num_keypoints=16 does not match the 'coco' schema"):
        create("simplebaseline-r18", num_keypoints=16)
    model = create("simplebaseline-r18", keypoints="mpii", input_size=SMALL)
    assert model.final_layer.out_channels == 16


def test_input_size_must_be_multiple_of_32():
    with pytest.raises(ConfigError, match="multiples of 32"):
        create("centernet-r18", input_size=(100, 100))


def _one_step_through_the_head(model):
    """A head's own training targets (on two generated samples) and loss: one Adam step lowers it."""
    head = get_head(model.edgepose_meta.kind)
    coco = resolve_dataset("synthetic:2", head.sample_mode, progress=False)
    data = head.train_dataset(coco, model.edgepose_meta, train=False, seed=0, flip_prob=0.0)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=2, collate_fn=data.collate_fn)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)  # Adam's first step moves every weight by ~lr: CPN's 26 M
    before, _ = data.step_loss(model, batch)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after, _ = data.step_loss(model, batch)
    assert float(after) < float(before)

