"""CalibrationSet: every source kind, deterministic order and digest, bad inputs skipped and counted."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from edgepose.calibration.dataset import CalibrationSet
from edgepose.errors import ConfigError, DataError
from edgepose.pipeline.preprocess import InputSpec, bottomup_batch, topdown_batch
from edgepose.runtimes.spec import ModelSpec

TOPDOWN = ModelSpec(kind="heatmap", input=InputSpec(size=(48, 64)))
BOTTOMUP = ModelSpec(kind="centernet", input=InputSpec(size=(64, 64)))


def _quiet(source, spec=TOPDOWN, **kw) -> CalibrationSet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CalibrationSet.from_source(source, spec, progress=False, **kw)


def _image(rng, h=40, w=30) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_synthetic_is_deterministic_and_seeded():
    a, b = _quiet("synthetic:6"), _quiet("synthetic:6")
    assert len(a) == 6 and a.digest == b.digest
    assert _quiet("synthetic:6", seed=1).digest != a.digest
    batch = next(a.batches())
    assert batch.shape == (1, 3, 64, 48) and batch.dtype == np.float32
    nhwc = next(a.batches("NHWC"))
    assert nhwc.shape == (1, 64, 48, 3) and np.array_equal(nhwc, batch.transpose(0, 2, 3, 1))
    assert _quiet("synthetic:6", size=4).digest == _quiet("synthetic:4").digest  # size caps N, same prefix
    assert next(_quiet("synthetic:2", BOTTOMUP).batches()).shape == (1, 3, 64, 64)
    d = a.describe()
    assert d == {"source": "synthetic:6", "size": 6, "digest": a.digest, "skipped": 0, "skipped_reasons": {}}


def test_folder_skips_and_counts_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    good = [_image(rng) for _ in range(3)]
    for i, img in enumerate(good):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img)
    cv2.imwrite(str(tmp_path / "gray.png"), good[0][..., 0])
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([good[0], good[0][..., :1]]))
    cv2.imwrite(str(tmp_path / "deep.png"), good[0].astype(np.uint16) * 256)
    cv2.imwrite(str(tmp_path / "tiny.png"), good[0][:4, :4])
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="skipped 6 input"):
        calib = CalibrationSet.from_source(tmp_path, TOPDOWN, progress=False)
    assert len(calib) == 3 and calib.num_skipped == 6
    reasons = calib.describe()["skipped_reasons"]
    assert reasons["unsupported file type"] == 1 and reasons["unreadable"] == 1
    assert reasons["1 channel(s) instead of 3"] == 1 and reasons["4 channel(s) instead of 3"] == 1
    assert reasons["not 8-bit (uint16)"] == 1 and reasons["smaller than 8 px"] == 1
    # the runtime's own preprocessing, in file-name order (whole image = the person box)
    want = topdown_batch(good[1], np.array([[0, 0, 30, 40]], np.float32), TOPDOWN.input)[0]
    assert np.array_equal(calib.samples[1], want)


def test_size_limit_picks_a_seeded_subset_in_a_fixed_order(tmp_path):
    rng = np.random.default_rng(1)
    images = [_image(rng) for _ in range(10)]
    for i, img in enumerate(images):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img)
    a, b = _quiet(tmp_path, size=4), _quiet(tmp_path, size=4)
    assert len(a) == 4 and a.digest == b.digest
    assert _quiet(tmp_path, size=4, seed=3).digest != a.digest
    box = np.array([[0, 0, 30, 40]], np.float32)
    index = [next(i for i, img in enumerate(images) if np.array_equal(s, topdown_batch(img, box, TOPDOWN.input)[0]))
             for s in a.samples]
    assert index == sorted(index)  # kept in source order whatever the subset


def test_coco_json_crops_gt_boxes_for_topdown_whole_images_for_bottomup(shared_data):
    ann = shared_data / "coco-mini" / "test_coco.json"
    crops = _quiet(ann)
    assert len(crops) == 14 and len(crops.image_ids) == 4  # one crop per non-crowd person box
    whole = _quiet(ann, BOTTOMUP)
    assert len(whole) == 4
    from edgepose.data.coco import CocoKeypoints

    coco = CocoKeypoints(ann)
    first = coco.image_ids[0]
    assert np.array_equal(whole.samples[0], bottomup_batch(coco.load_image(first), BOTTOMUP.input)[0])


def test_video_frames_with_stride(shared_data):
    video = next((shared_data / "posetrack18-mini" / "videos").rglob("*.mp4"))
    every, second = _quiet(video), _quiet(video, stride=2)
    assert len(every) >= 4 and len(second) == (len(every) + 1) // 2
    assert np.array_equal(second.samples[1], every.samples[2])


def test_few_samples_warn():
    with pytest.warns(UserWarning, match="only 3 samples"):
        CalibrationSet.from_source("synthetic:3", TOPDOWN, progress=False)


@pytest.mark.parametrize("name, content, match", [
    (None, None, "no usable samples"),  # empty folder
    ("x.txt", b"x", "no usable samples .*1 unsupported file type"),  # folder without images
    ("clip.mp4", b"\x00" * 64, "cannot open video"),
    ("missing", None, "not found"),
    ("m.onnx", b"x", "unsupported type '.onnx'"),
])
def test_bad_sources_are_data_errors(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    source = tmp_path / name if name and name != "x.txt" else tmp_path
    with pytest.raises(DataError, match=match):
        _quiet(source)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="synthetic"):
        _quiet("synthetic:many")
    with pytest.raises(ConfigError, match="size"):
        _quiet("synthetic:4", size=0)
    with pytest.raises(ConfigError, match="layout"):
        next(_quiet("synthetic:1").batches("NCWH"))


def test_topdown_video_frames_are_cropped_to_the_person_the_model_finds(shared_data):
    """Frames without boxes (video) calibrate a top-down model on person crops: ``person_box`` picks them, the
    export passes the float model's own confident-joint box (the label-free gate's), and the set counts them."""
    from edgepose.export.api import _calibration_set
    from edgepose.models import create
    from edgepose.pipeline.preprocess import topdown_batch

    video = next((shared_data / "posetrack18-mini" / "videos").rglob("*.mp4"))
    boxes = [np.array([10, 20, 58, 84], np.float32), np.array([0, 0, 4, 4], np.float32)]
    seen = []

    def finder(image):
        seen.append(image)
        return (boxes[0], "reference") if len(seen) % 2 else (boxes[1], "frame")

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        cropped = CalibrationSet.from_source(video, TOPDOWN, size=4, progress=False, person_box=finder)
    assert not [w for w in got if "whole frames" in str(w.message)]  # boxes found: nothing to warn about
    assert len(seen) == 4 and cropped.boxes == {"reference": 2, "frame": 2}
    assert cropped.describe()["person_boxes"] == {"reference": 2, "whole frame": 2}
    expected = [topdown_batch(image, boxes[i % 2][None], TOPDOWN.input)[0] for i, image in enumerate(seen)]
    assert all(any(np.array_equal(s, e) for e in expected) for s in cropped.samples)  # each sample is its crop
    assert not any(np.array_equal(s, w) for s in cropped.samples for w in _quiet(video, size=4).samples)
    assert cropped.subset(2).boxes == {}  # the counts describe the whole set
    assert _quiet(video, BOTTOMUP, size=2, person_box=finder).boxes == {}  # bottom-up: whole frames, no finder
    calib = _calibration_set(create("simplebaseline-mnv2s-edge", weights="default"), "int8", str(video), 4)
    assert len(calib) == 4 and sum(calib.boxes.values()) == 4  # export: the float model finds the boxes
    # a set built once (edgepose.export.api.calibration_set) goes to each export whole: no subset drops its counts
    assert _calibration_set(None, "int8", calib, 128) is calib and _calibration_set(None, "int8", calib, 2).boxes == {}


def test_degenerate_data_and_whole_frames_warn(tmp_path):
    """All-black images calibrate INT8 ranges that fit nothing; a top-down model fed whole frames is warned."""
    import cv2

    from edgepose.calibration.dataset import CalibrationSet, _degenerate
    from edgepose.models import create

    spec = create("simplebaseline-mnv2s-edge").edgepose_meta
    from edgepose.runtimes.spec import ModelSpec

    spec = ModelSpec.from_meta(spec)
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"black{i}.png"), np.zeros((64, 48, 3), np.uint8))
    with pytest.warns(UserWarning) as got:
        CalibrationSet.from_source(tmp_path, spec, size=4, progress=False)
    text = " | ".join(str(w.message) for w in got)
    assert "looks degenerate: 4 of 4 samples are constant images" in text and "whole frames" in text
    same = [np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)] * 3
    assert _degenerate(same) == "all 3 samples are the same image"
    assert _degenerate([np.random.default_rng(i).standard_normal((1, 3, 8, 8)) for i in range(3)]) == ""


def test_gate_says_when_its_verdict_means_little(shared_data, tmp_path):
    """A validation set that is tiny, that the model cannot see people in, or that calibration also read, is named
    as such; calibrating on frames without ground truth says the gate falls back to synthetic data."""
    from types import SimpleNamespace

    from edgepose.calibration.gate import resolve_val, validation_notes
    from edgepose.data.coco import CocoKeypoints

    ann = shared_data / "coco-mini" / "test_coco.json"
    coco = CocoKeypoints(ann)
    calib = SimpleNamespace(source=str(ann), image_ids=list(coco.image_ids)[:2])
    with pytest.warns(UserWarning):
        notes = validation_notes(coco, calib, reference_ap=3.6, num_images=len(coco.image_ids))
    assert len(notes) == 3
    assert "only 4 images" in notes[0] and "AP 3.6" in notes[1] and "2 validation image(s)" in notes[2]
    frames = SimpleNamespace(source=str(tmp_path), image_ids=[])
    with pytest.warns(UserWarning, match="no held-out images .* synthetic-val:5"):
        _, name = resolve_val(None, frames, "heatmap", tmp_path, size=5)
    assert name == "synthetic-val:5"
