"""Soft targets (``edgepose distill --soft-weight``): the teacher's heatmaps on the student's grid, and the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgepose.distill.soft import SoftTargets
from edgepose.errors import ConfigError
from edgepose.models import create

STUDENT = "movenet-heatmap-edge"  # 160 x 192 input, 40 x 48 heatmaps


@pytest.fixture(scope="module")
def thunder():
    return create("movenet-thunder", weights="default")


def test_a_teacher_peak_lands_on_the_student_cell_it_covers(thunder):
    """Thunder's 64 x 64 map spans the 192 px square around the 160 x 192 crop (16 px of padding each side), cell
    c at square pixel 3c; the student's cell j sits at crop pixel 4j. Teacher cell (20, 32) = square pixel
    (60, 96) = crop pixel (44, 96) = student cell (11, 24)."""
    soft = SoftTargets(thunder, create(STUDENT), 0.5)
    gy, gx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    heat = torch.exp(-((gx - 20) ** 2 + (gy - 32) ** 2) / 2.0).expand(1, 17, 64, 64)
    out = soft._resample(heat, 192, 16, 0)
    assert out.shape == (1, 17, 48, 40)
    y, x = divmod(int(out[0, 0].argmax()), 40)
    assert (x, y) == (11, 24)
    assert float(out[0, 0, 24, 11]) == pytest.approx(1.0, abs=1e-5)
    # student cell 12 = crop pixel 48 = square pixel 64 = teacher cell 21 1/3: bilinear between cells 21 and 22
    assert float(out[0, 0, 24, 12]) == pytest.approx(2 / 3 * np.exp(-0.5) + 1 / 3 * np.exp(-2.0), abs=1e-5)


@pytest.mark.slow
def test_soft_targets_agree_with_coco_labels_on_real_crops(thunder, shared_data):
    from edgepose.data.coco import CocoKeypoints
    from edgepose.heads import get_head

    ann = shared_data / "coco-mini" / "test_coco.json"
    student = create(STUDENT, weights="default")
    ds = get_head("heatmap").train_dataset(CocoKeypoints(ann, ann.parent), student.edgepose_meta, train=False)
    images, hard, weight = (torch.stack([torch.as_tensor(np.asarray(ds[i][j])) for i in range(len(ds))])
                            for j in range(3))
    soft = SoftTargets(thunder, student, 0.5).targets(images)
    n, k, h, w = hard.shape
    a, b = hard.reshape(n, k, -1).argmax(-1), soft.reshape(n, k, -1).argmax(-1)
    dist = torch.hypot((a // w - b // w).float(), (a % w - b % w).float())
    seen = weight > 0
    assert float(dist[seen].median()) <= 1.5  # the teacher's peak on the labelled joint's cell (12 people)
    peaks = soft.reshape(n, k, -1).max(-1).values
    assert float(peaks[seen].median()) > 2 * float(peaks[~seen].median())  # unlabelled joints: the teacher is unsure
    assert float(soft.min()) >= 0.0 and float(soft.max()) <= 1.0


def test_the_loss_mixes_hard_and_soft_targets(thunder):
    student = create(STUDENT)
    torch.manual_seed(0)
    images = torch.rand(2, 3, 192, 160) * 2 - 1
    hard = torch.zeros(2, 17, 48, 40)
    weight = torch.ones(2, 17)
    only_soft = SoftTargets(thunder, student, 1.0)
    half = SoftTargets(thunder, student, 0.5)
    loss1, parts1 = only_soft.step_loss(student, (images, hard, weight))
    loss_half, parts = half.step_loss(student, (images, hard, weight))
    assert float(loss1) == pytest.approx(parts1["soft"], rel=1e-5)
    assert float(loss_half) == pytest.approx(0.5 * parts["mse"] + 0.5 * parts["soft"], rel=1e-5)
    loss_half.backward()
    assert student.heads["kpt_heatmap"].out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("teacher, student, weight, expected", [
    ("movenet-multipose", STUDENT, 0.5, "need a MoveNet single-pose teacher"),
    ("simplebaseline-mnv2s-edge", STUDENT, 0.5, "need a MoveNet single-pose teacher"),
    ("movenet-thunder", "movenet-centernet-edge", 0.5, "need a heatmap student"),
    ("movenet-thunder", "cpn-r50", 0.5, "trains several stages"),
    ("movenet-thunder", STUDENT, 1.5, "must be in (0, 1]"),
])
def test_bad_soft_target_setups_are_one_line_errors(teacher, student, weight, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        SoftTargets(create(teacher), create(student), weight)
    assert "\n" not in str(err.value)
