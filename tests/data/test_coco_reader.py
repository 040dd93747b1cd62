"""COCO keypoints reader on coco-mini: counts, images, detections and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepose.data.coco import CocoKeypoints, load_detections
from edgepose.errors import DataError

COCO_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco-mini"
ANN = COCO_DIR / "test_coco.json"
DET = COCO_DIR / "test_coco_det_AP_H_56.json"


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(ANN.read_text())


@pytest.fixture(scope="module")
def ds() -> CocoKeypoints:
    return CocoKeypoints(ANN)


def test_counts_match_the_json(ds: CocoKeypoints, raw: dict) -> None:
    assert len(ds) == len(raw["images"]) == 4
    assert sorted(ds.image_ids) == sorted(im["id"] for im in raw["images"])
    assert sum(len(ds.annotations_for(i)) for i in ds.image_ids) == len(raw["annotations"]) == 14
    with_kps = [a for a in raw["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    insts = ds.instances()
    assert len(insts) == len(with_kps) == 12
    assert ds.num_keypoints == 17
    assert len(ds.instances(min_keypoints=0)) == 14


def test_instances_match_their_annotations(ds: CocoKeypoints, raw: dict) -> None:
    by_id = {a["id"]: a for a in raw["annotations"]}
    for inst in ds.instances():
        ann = by_id[inst.ann_id]
        assert inst.image_id == ann["image_id"] and inst.category_id == ann["category_id"]
        assert inst.keypoints.shape == (17, 3) and inst.keypoints.dtype == np.float32
        np.testing.assert_allclose(inst.keypoints.reshape(-1), ann["keypoints"])
        np.testing.assert_allclose(inst.bbox_xywh, ann["bbox"], rtol=1e-6)
        x, y, w, h = ann["bbox"]
        np.testing.assert_allclose(inst.bbox_xyxy, [x, y, x + w, y + h], rtol=1e-6)
        assert inst.num_visible == ann["num_keypoints"]
        assert inst.area == pytest.approx(ann["area"])


def test_load_image_matches_image_info(ds: CocoKeypoints) -> None:
    for image_id in ds.image_ids:
        info = ds.image_info(image_id)
        img = ds.load_image(image_id)
        assert img.dtype == np.uint8 and img.shape == (info["height"], info["width"], 3)
    with pytest.raises(DataError, match="image id 12345"):
        ds.image_info(12345)


def test_to_coco_dict_is_a_copy(ds: CocoKeypoints, raw: dict) -> None:
    d = ds.to_coco_dict()
    assert d == raw
    d["annotations"].clear()
    assert len(ds.to_coco_dict()["annotations"]) == 14


def test_missing_json(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="not found: .*nope.json"):
        CocoKeypoints(missing)


def test_corrupt_json_names_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "truncated.json"
    text = ANN.read_text()
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"corrupt .*truncated\.json: .* line \d+ column \d+") as e:
        CocoKeypoints(bad)
    assert "\n" not in str(e.value)


def test_json_without_images_or_annotations(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"annotations": []}))
    with pytest.raises(DataError, match="'images' and 'annotations'"):
        CocoKeypoints(p)


def test_wrong_keypoint_count(tmp_path: Path, raw: dict) -> None:
    data = json.loads(json.dumps(raw))
    data["annotations"][3]["keypoints"] = data["annotations"][3]["keypoints"][:48]
    p = tmp_path / "short.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"has 16 keypoints; expected 17"):
        CocoKeypoints(p)
    with pytest.raises(DataError, match=r"has 17 keypoints; expected 16 for schema 'mpii'"):
        CocoKeypoints(ANN, schema="mpii")


def test_missing_image_file(tmp_path: Path, raw: dict) -> None:
    shutil.copy(ANN, tmp_path / "test_coco.json")
    ds = CocoKeypoints(tmp_path / "test_coco.json")  # img_dir defaults to the json's folder
    image_id = ds.image_ids[0]
    name = ds.image_info(image_id)["file_name"]
    with pytest.raises(DataError, match=f"not found: .*{name}"):
        ds.load_image(image_id)
    assert CocoKeypoints(tmp_path / "test_coco.json", img_dir=COCO_DIR).load_image(image_id).ndim == 3


def test_no_usable_instances(tmp_path: Path, raw: dict) -> None:
    data = json.loads(json.dumps(raw))
    data["annotations"] = [a for a in data["annotations"] if a["num_keypoints"] == 0]
    p = tmp_path / "empty.json"
    p.write_text(json.dumps(data))
    ds = CocoKeypoints(p)
    with pytest.raises(DataError, match="no usable person instances"):
        ds.instances()


def test_load_detections() -> None:
    raw = json.loads(DET.read_text())
    dets = load_detections(DET)
    assert sum(len(v) for v in dets.values()) == len(raw) == 118
    first = raw[0]
    box, _ = next(d for d in dets[first["image_id"]] if d[1] == pytest.approx(first["score"]))
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose(box, [x, y, x + w, y + h], rtol=1e-6)
    for lst in dets.values():
        scores = [s for _, s in lst]
        assert scores == sorted(scores, reverse=True)
    strong = load_detections(DET, min_score=0.5)
    assert sum(len(v) for v in strong.values()) == sum(d["score"] >= 0.5 for d in raw)


def _edited(tmp_path: Path, raw: dict, edit) -> Path:
    data = json.loads(json.dumps(raw))
    edit(data)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["annotations"][0].update(keypoints=[]), "has 0 keypoints; expected 17"),
    (lambda d: d["annotations"][0].update(keypoints=None), "expected a list of 51 numbers"),
    (lambda d: d["annotations"][0].pop("keypoints"), "expected a list of 51 numbers"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(0, "x"), "expected a list of 51 numbers"),
    (lambda d: d["annotations"][0].pop("bbox"), "expected \\[x, y, w, h\\]"),
    (lambda d: d["images"][0].update(id="img_785"), "integer 'id'"),
    (lambda d: d["images"][0].pop("file_name"), "'file_name'"),
])
def test_malformed_annotations_are_one_line_errors(tmp_path: Path, raw: dict, edit, match) -> None:
    with pytest.raises(DataError, match=match):
        CocoKeypoints(_edited(tmp_path, raw, edit), COCO_DIR)


def test_other_categories_are_not_people(tmp_path: Path, raw: dict) -> None:
    """A dog with keypoints used to train as a person and halve AP (pycocotools averages over categories)."""
    def add_dog(d):
        d["categories"].append({"id": 2, "name": "dog"})
        d["annotations"].append(dict(d["annotations"][0], id=999999, category_id=2))

    ds = CocoKeypoints(_edited(tmp_path, raw, add_dog), COCO_DIR)
    assert len(ds.instances()) == 12
    assert [c["name"] for c in ds.to_coco_dict()["categories"]] == ["person"]


def test_keypoint_names_other_than_the_schema_warn(shared_data) -> None:
    ann = shared_data / "posetrack18-mini" / "annotations" / "test_posetrack18_val.json"
    with pytest.warns(UserWarning, match="keypoint names differ from the 'coco' schema"):
        CocoKeypoints(ann)


def test_eval_refuses_data_of_another_keypoint_schema(ds: CocoKeypoints) -> None:
    from edgepose.eval.evaluate import evaluate
    from edgepose.models import create
    from edgepose.runtimes.torch import TorchRuntime

    with TorchRuntime(create("simplebaseline-mnv2s-edge", keypoints="mpii").eval()) as rt, \
            pytest.raises(DataError, match="predicts 'mpii' keypoints \\(16\\).*'coco' ones \\(17\\)"):
        evaluate(rt, ds, progress=False)
