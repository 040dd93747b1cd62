"""MoveNet's trunks copied into students: a torchvision-named MobileNetV2 x1.0, and the MoveNet-trunk zoo models."""

from __future__ import annotations

import pytest
import torch

from edgepose.errors import ConfigError
from edgepose.models import create
from edgepose.models.movenet_trunk import trunk_from_movenet


@pytest.fixture(scope="module")
def lightning():
    return create("movenet-lightning", weights="default").eval()


def test_stem_computes_movenets_stem_on_the_students_normalisation(lightning):
    student = create("simplebaseline-mnv2-edge", input_size=(96, 128)).eval()
    assert trunk_from_movenet(student, lightning) == 5 * 52
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor(student.edgepose_meta.mean).view(1, 3, 1, 1)
    std = torch.tensor(student.edgepose_meta.std).view(1, 3, 1, 1)
    shifted = torch.nn.functional.pad(x[..., 1:, 1:], (0, 1, 0, 1))  # TF pads bottom/right; the zoo every side
    with torch.no_grad():
        want = lightning.backbone.stem((x - 0.5) / 0.5)
        got = student.features[0]((shifted - mean) / std)
    torch.testing.assert_close(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-4, rtol=1e-4)


def test_folded_batchnorm_becomes_an_identity_plus_bias(lightning):
    student = create("simplebaseline-mnv2-edge", input_size=(96, 128)).eval()
    trunk_from_movenet(student, lightning)
    src = lightning.state_dict()
    conv, bn = student.features[5].conv[2], student.features[5].conv[3]  # block 4's projection
    torch.testing.assert_close(conv.weight, src["backbone.blocks.4.project.conv.weight"])
    x = torch.randn(2, conv.out_channels, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(bn(x), x + src["backbone.blocks.4.project.conv.bias"].view(1, -1, 1, 1),
                                   atol=1e-5, rtol=1e-5)


def test_another_width_is_refused(lightning):
    with pytest.raises(ConfigError, match=r"does not fit simplebaseline-mnv2s-edge: backbone.stem.conv is "
                                          r"\(32, 3, 3, 3\), the student's is \(16, 3, 3, 3\)"):
        trunk_from_movenet(create("simplebaseline-mnv2s-edge"), lightning)
    with pytest.raises(ConfigError, match="no torchvision-named MobileNetV2 trunk"):
        trunk_from_movenet(create("simplebaseline-r18"), lightning)


def test_movenet_heatmap_student_starts_as_lightnings_heatmap_head(lightning):
    """``movenet-heatmap-edge`` takes Lightning's trunk, pyramid and keypoint-heatmap head by name: on the same input
    its heatmaps are exactly Lightning's, through a sigmoid."""
    student = create("movenet-heatmap-edge").eval()
    assert trunk_from_movenet(student, lightning) == len(student.state_dict())
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        want = torch.sigmoid(lightning(x)[lightning.head_names.index("kpt_heatmap")])
        got = student(x)
    assert got.shape == (1, 17, 32, 24)
    torch.testing.assert_close(got, want)
    assert student.edgepose_meta.kind == "heatmap" and student.edgepose_meta.mean == (0.5, 0.5, 0.5)


def test_movenet_centernet_student_starts_as_multipose_in_the_zoos_layout():
    """``movenet-centernet-edge`` takes MultiPose's trunk, pyramid and the five heads it has a counterpart for, their
    two-channel heads turned from (y, x) into the zoo's (x, y); ``hp_offset`` keeps its start at the cell centre."""
    multipose = create("movenet-multipose", weights="default").eval()
    student = create("movenet-centernet-edge").eval()
    fresh = {k: v.clone() for k, v in student.state_dict().items() if k.startswith("heads.hp_offset.")}
    assert trunk_from_movenet(student, multipose) == len(student.state_dict()) - len(fresh) and len(fresh) == 5
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        theirs = dict(zip(multipose.head_names, multipose(x)))
        ours = dict(zip(student.head_names, student(x)))

    def xy(t):  # (N, 2K, H, W) rows (dy, dx) per joint → (dx, dy)
        return t.reshape(t.shape[0], -1, 2, *t.shape[2:]).flip(2).reshape(t.shape)

    for a, b in (("hm", "centre"), ("hm_hp", "kpt_heatmap")):
        torch.testing.assert_close(ours[a], theirs[b])
    for a, b in (("hps", "kpt_regress"), ("wh", "box_scale"), ("reg", "box_offset")):
        torch.testing.assert_close(ours[a], xy(theirs[b]))
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in fresh.items())
    torch.testing.assert_close(ours["hp_offset"], torch.full_like(ours["hp_offset"], 0.5), atol=0.05, rtol=0)


def test_movenet_centernet_student_refuses_lightnings_narrower_trunk(lightning):
    with pytest.raises(ConfigError, match="does not fit movenet-centernet-edge: backbone.stem.conv.weight is "
                                          r"\(48, 3, 3, 3\) there, \(32, 3, 3, 3\) in the teacher; "
                                          r"expected the same trunk width \(movenet-multipose's\)"):
        trunk_from_movenet(create("movenet-centernet-edge"), lightning)
