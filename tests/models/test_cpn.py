"""CPN: OHKM keeps the hardest joints, every GlobalNet level trains, the RefineNet's maps are what deploys."""

from __future__ import annotations

import pytest
import torch

from edgepose.data.sources import resolve_dataset
from edgepose.heads import get_head
from edgepose.models import create
from edgepose.train.loop import TrainConfig, train
from edgepose.train.losses import heatmap_mse, ohkm_mse


def test_ohkm_averages_each_samples_worst_joints():
    target = torch.zeros(2, 4, 2, 2)
    pred = torch.zeros(2, 4, 2, 2)
    pred[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # per-joint losses 0.5 * v² / 4
    pred[1, 2, 1, 1] = 2.0
    weight = torch.ones(2, 4)
    per = 0.5 * torch.tensor([[1.0, 4.0, 9.0, 16.0], [0.0, 0.0, 4.0, 0.0]]) / 4
    expect = (per[0].topk(2).values.mean() + per[1].topk(2).values.mean()) / 2
    assert torch.isclose(ohkm_mse(pred, target, weight, topk=2), expect)
    assert torch.isclose(ohkm_mse(pred, target, weight, topk=4), heatmap_mse(pred, target, weight))
    weight[0, 3] = 0  # an unlabelled joint is never "hard"
    assert torch.isclose(ohkm_mse(pred, target, weight, topk=1), (per[0, 2] + per[1, 2]) / 2)


def test_every_stage_in_training_the_refinenet_deployed():
    model = create("cpn-r50", input_size=(64, 96)).eval()
    x = torch.zeros(1, 3, 96, 64)
    with torch.no_grad():
        global_maps, refined = model.forward_train(x)
        deployed = model(x)
    assert len(global_maps) == 4 and all(tuple(g.shape) == (1, 17, 24, 16) for g in global_maps)
    assert torch.equal(deployed, refined)
    model.train()
    batch = (torch.randn(2, 3, 96, 64), torch.rand(2, 17, 24, 16), torch.ones(2, 17))
    loss, _ = get_head("heatmap").step_loss(model, batch)
    loss.backward()  # both stages are supervised: gradients reach every GlobalNet level and the RefineNet
    assert all(p[1].weight.grad.abs().sum() > 0 for p in model.global_net.predict)
    assert model.refine_net.final_predict[-1].weight.grad.abs().sum() > 0
    # the ResNet-50 trunk keeps torchvision's names (ImageNet weights load)
    assert "layer4.2.bn3.running_var" in model.state_dict() and "global_net.laterals.3.0.weight" in model.state_dict()


@pytest.mark.slow
def test_a_few_training_steps_supervise_global_and_refine(tmp_path):
    torch.manual_seed(0)
    model = create("cpn-r50", input_size=(64, 96))
    coco = resolve_dataset("synthetic:16", "single", progress=False)
    data = get_head("heatmap").train_dataset(coco, model.edgepose_meta, train=True, seed=0, flip_prob=0.0)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=8)))
    before, parts = data.step_loss(model, batch)
    assert set(parts) == {"inner", "final"}  # the head took the model's own multi-stage loss
    train(model, data, TrainConfig(epochs=2, batch_size=8, lr=1e-3, threads=2, workers=0, warmup_steps=1,
                                   progress=False), log=None)
    after, after_parts = data.step_loss(model, batch)
    assert float(after) < 0.85 * float(before), (parts, after_parts)
    assert after_parts["inner"] < parts["inner"]
