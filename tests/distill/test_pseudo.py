"""Pseudo-labels from the MoveNet teachers on real pixels: their agreement with COCO's labels, the cache, atomic
writes, the split by video, and the one-line errors for bad teachers and bad footage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepose.distill import pseudo
from edgepose.distill.pseudo import LabelOptions, Teacher, person_size, pseudo_label, source_files
from edgepose.errors import ConfigError, DataError
from edgepose.keypoints import get_schema

PHOTO = "000000196141.jpg"  # 4 people with keypoints in COCO's labels


@pytest.fixture(scope="module")
def teacher():
    t = Teacher("movenet-multipose", "movenet-thunder", keypoints="coco", threads=2)
    yield t
    t.close()


def _oks(pred: np.ndarray, gt: dict, sigmas: np.ndarray) -> float:
    g = np.asarray(gt["keypoints"], np.float64).reshape(-1, 3)
    vis = g[:, 2] > 0
    d2 = ((pred[:, :2] - g[:, :2]) ** 2).sum(axis=1)
    return float(np.exp(-d2[vis] / (2 * gt["area"] * (2 * sigmas[vis]) ** 2)).mean())


def test_labels_agree_with_coco_ground_truth(teacher, clip, shared_data, tmp_path):
    coco, info = pseudo_label([clip], teacher, LabelOptions(frame_stride=2), root=tmp_path, progress=False)
    assert info["frames"] == 2 and [im["frame"] for im in coco.to_coco_dict()["images"]] == [0, 2]
    assert {im["video"] for im in coco.to_coco_dict()["images"]} == {"photo"}
    gt = json.loads((shared_data / "coco-mini" / "test_coco.json").read_text())
    image_id = next(im["id"] for im in gt["images"] if im["file_name"] == PHOTO)
    truth = [a for a in gt["annotations"] if a["image_id"] == image_id and a["num_keypoints"] > 0]
    found = [a for a in coco.annotations_for(1) if not a["iscrowd"]]
    assert len(found) >= 3, found
    sigmas = np.asarray(get_schema("coco").sigmas)
    for person in truth:  # every labelled person has a pseudo-label that matches it well (OKS >= 0.5)
        best = max(_oks(np.asarray(a["keypoints"]).reshape(-1, 3), person, sigmas) for a in found)
        assert best >= 0.5, (person["id"], best)
    for a in found:  # unlabelled joints carry no coordinates; boxes hold their labelled joints
        k = np.asarray(a["keypoints"]).reshape(-1, 3)
        assert a["num_keypoints"] == int((k[:, 2] == 2).sum()) >= 6 and not k[k[:, 2] == 0].any()
        x, y, w, h = a["bbox"]
        lab = k[k[:, 2] == 2, :2]
        assert (lab >= [x - 1e-3, y - 1e-3]).all() and (lab <= [x + w + 1e-3, y + h + 1e-3]).all()


def test_cached_labels_are_reused_and_keyed_by_options(teacher, clip, tmp_path, monkeypatch):
    opts = LabelOptions(frame_stride=3)
    first, _ = pseudo_label([clip], teacher, opts, root=tmp_path, progress=False)

    def no_labelling(*a, **k):
        raise AssertionError("labelled again although the cache holds this entry")

    monkeypatch.setattr(pseudo, "label_frame", no_labelling)
    lines: list[str] = []
    again, _ = pseudo_label([clip], teacher, LabelOptions(frame_stride=3), root=tmp_path, progress=False,
                            log=lines.append)
    assert again.ann_file == first.ann_file and "reusing" in lines[0]
    with pytest.raises(AssertionError, match="labelled again"):  # other options, other entry
        pseudo_label([clip], teacher, LabelOptions(frame_stride=3, min_joints=7), root=tmp_path, progress=False)


def test_interrupted_labelling_leaves_nothing(teacher, clip, tmp_path, monkeypatch):
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [], {}

    monkeypatch.setattr(pseudo, "label_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pseudo_label([clip], teacher, LabelOptions(), root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_person_teacher_input_follows_the_frame():
    assert person_size(768, 576, 640) == (640, 480)
    assert person_size(1080, 1920, 640) == (352, 640)
    assert all(v % 32 == 0 for v in person_size(1000, 333, 640))


def test_bad_footage(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: the folder holds no images or videos"):
        source_files([tmp_path / "empty"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes.txt: unsupported type '.txt'; expected a video"):
        source_files([tmp_path / "notes.txt"])
    with pytest.raises(DataError, match=r"missing.mp4: not found"):
        source_files([tmp_path / "missing.mp4"])


def test_bad_teachers():
    with pytest.raises(ConfigError, match=r"--person-teacher movenet-thunder is a 'regression' model; expected a "
                                          r"bottom-up model"):
        Teacher("movenet-thunder", "movenet-thunder", keypoints="coco")
    with pytest.raises(ConfigError, match=r"--person-teacher movenet-multipose predicts 'coco' keypoints \(17\); "
                                          r"the student predicts 'mpii' \(16\)"):
        Teacher("movenet-multipose", "movenet-thunder", keypoints="mpii")


@pytest.mark.parametrize("field,value", [("person_score", 1.0), ("joint_score", -0.1), ("min_joints", 0),
                                         ("frame_stride", 0)])
def test_bad_options(field, value):
    with pytest.raises(ConfigError, match=f"--{field.replace('_', '-')} must be"):
        LabelOptions(**{field: value}).validate()


def test_the_person_teacher_runs_at_the_frames_size(tmp_path):
    from edgepose.models import create
    from edgepose.models.checkpoint import save_checkpoint

    ckpt = tmp_path / "multipose.pt"
    save_checkpoint(create("movenet-multipose", weights="default"), ckpt)
    for person in (str(ckpt), "movenet-multipose"):  # a name loads the embedded checkpoint: the same path
        t = Teacher(person, "movenet-thunder", keypoints="coco", threads=1)
        try:
            assert tuple(t.person_runtime((352, 640)).spec.input.size) == (352, 640)
        finally:
            t.close()
