"""Synthetic COCO-17 generator: annotation validity, left/right cues, determinism, atomic cached writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.data import synthetic
from edgepose.data.synthetic import draw_annotations, generate_dataset, render_sample
from edgepose.errors import ConfigError, DataError, UnknownNameError
from edgepose.keypoints import COCO17

SIZES = {"single": (192, 256), "multi": (256, 256)}


def _samples(mode: str, n: int, seed: int = 1) -> list[tuple[np.ndarray, list[dict]]]:
    return [render_sample(np.random.default_rng([seed, i]), mode=mode, image_size=SIZES[mode])
            for i in range(n)]


@pytest.fixture(scope="module")
def single() -> list[tuple[np.ndarray, list[dict]]]:
    return _samples("single", 160)


@pytest.fixture(scope="module")
def multi() -> list[tuple[np.ndarray, list[dict]]]:
    return _samples("multi", 60)


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_annotations_are_valid(mode: str, single: list, multi: list) -> None:
    w, h = SIZES[mode]
    flags = []
    for image, anns in (single if mode == "single" else multi):
        assert image.shape == (h, w, 3) and image.dtype == np.uint8
        for ann in anns:
            kp = ann["keypoints"]
            assert kp.shape == (17, 3) and kp.dtype == np.float32
            vis = kp[:, 2] > 0
            assert ann["num_keypoints"] == int(vis.sum()) > 0
            assert np.all(kp[~vis] == 0), "v=0 keypoints must be (0, 0, 0)"
            assert set(np.unique(kp[:, 2])) <= {0.0, 1.0, 2.0}
            x, y, bw, bh = ann["bbox"]
            assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h and bw > 0 and bh > 0
            assert 0 < ann["area"] <= bw * bh
            p = kp[vis, :2]
            assert np.all((p >= 0) & (p <= [w - 1, h - 1])), "labelled keypoints must lie in the image"
            assert np.all((p >= [x - 1, y - 1]) & (p <= [x + bw, y + bh])), "keypoints outside the bbox"
            flags.append(kp[:, 2])
    flags = np.array(flags)
    # every flag occurs: occlusion (v=1) and unlabelled / truncated joints (v=0) are part of the data
    assert (flags == 2).mean() > 0.6 and 0.03 < (flags == 1).mean() < 0.35 and (flags == 0).mean() > 0.01


def test_single_person_fills_the_crop(single: list) -> None:
    fills = []
    for image, anns in single:
        assert len(anns) == 1
        _, _, bw, bh = anns[0]["bbox"]
        fills.append(max(bw / image.shape[1], bh / image.shape[0]))
    assert np.median(fills) > 0.7


def test_multi_mode_has_several_people(multi: list) -> None:
    counts = [len(anns) for _, anns in multi]
    assert max(counts) <= 3 and min(counts) >= 1
    assert sum(c > 1 for c in counts) > len(counts) / 3
    one = _samples_max_people(1)
    assert all(len(anns) == 1 for _, anns in one)


def _samples_max_people(max_people: int) -> list:
    return [render_sample(np.random.default_rng([5, i]), mode="multi", image_size=(256, 256),
                          max_people=max_people) for i in range(8)]


def test_left_and_right_follow_the_facing_direction(single: list) -> None:
    """A person facing the camera has their left shoulder on the image right; seen from behind
    (nose and eyes unlabelled) on the image left."""
    front, back = [], []
    for _, anns in single:
        kp = anns[0]["keypoints"]
        if kp[5, 2] == 0 or kp[6, 2] == 0:
            continue
        if kp[0, 2] == 2 and kp[1, 2] == 2 and kp[2, 2] == 2:
            front.append(kp[5, 0] > kp[6, 0])
        elif kp[0, 2] == 0 and kp[1, 2] == 0 and kp[2, 2] == 0:
            back.append(kp[5, 0] < kp[6, 0])
    assert len(front) > 50 and np.mean(front) > 0.9
    assert len(back) > 5 and np.mean(back) > 0.8


def test_left_side_is_drawn_darker(single: list) -> None:
    """The left limbs are darker than the right ones, so left / right is learnable from the image."""
    darker = []
    for image, anns in single:
        kp = anns[0]["keypoints"]
        grey = image.astype(np.float32).mean(2)
        for left, right in ((7, 8), (13, 14)):  # elbows, knees
            if kp[left, 2] == 2 and kp[right, 2] == 2:
                (xl, yl), (xr, yr) = kp[left, :2].round().astype(int), kp[right, :2].round().astype(int)
                patch_l, patch_r = grey[yl - 1:yl + 2, xl - 1:xl + 2], grey[yr - 1:yr + 2, xr - 1:xr + 2]
                darker.append(patch_l.mean() < patch_r.mean())
    assert len(darker) > 100 and np.mean(darker) > 0.75


def test_render_sample_is_deterministic() -> None:
    a_img, a_ann = render_sample(np.random.default_rng(42), mode="multi", image_size=(256, 256))
    b_img, b_ann = render_sample(np.random.default_rng(42), mode="multi", image_size=(256, 256))
    c_img, _ = render_sample(np.random.default_rng(43), mode="multi", image_size=(256, 256))
    assert np.array_equal(a_img, b_img) and not np.array_equal(a_img, c_img)
    assert len(a_ann) == len(b_ann)
    for x, y in zip(a_ann, b_ann):
        assert np.array_equal(x["keypoints"], y["keypoints"]) and x["bbox"] == y["bbox"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dataset_is_byte_identical_per_seed_and_stable_under_subsets(tmp_path: Path) -> None:
    a = _files(generate_dataset(tmp_path / "a", num_images=5, mode="multi", seed=3).parent)
    b = _files(generate_dataset(tmp_path / "b", num_images=5, mode="multi", seed=3).parent)
    c = _files(generate_dataset(tmp_path / "c", num_images=5, mode="multi", seed=4).parent)
    small = _files(generate_dataset(tmp_path / "d", num_images=2, mode="multi", seed=3).parent)
    assert a == b
    assert sorted(a) == sorted(c) and all(a[k] != c[k] for k in a if k.endswith(".jpg"))
    assert all(small[k] == a[k] for k in small if k.endswith(".jpg"))


def test_dataset_loads_in_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    path = generate_dataset(tmp_path / "ds", num_images=6, mode="multi", seed=0, max_people=3)
    data = json.loads(path.read_text())
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 6 == len(list((tmp_path / "ds" / "images").glob("*.jpg")))
    assert len(coco.getAnnIds()) == len(data["annotations"]) >= 6
    cat = coco.loadCats(1)[0]
    assert cat["keypoints"] == list(COCO17.names)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in COCO17.skeleton]
    for ann in coco.loadAnns(coco.getAnnIds()):
        kp = np.array(ann["keypoints"]).reshape(17, 3)
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum()) and ann["iscrowd"] == 0
        img = coco.loadImgs(ann["image_id"])[0]
        assert (tmp_path / "ds" / img["file_name"]).is_file()
    assert data["info"]["params"]["seed"] == 0 and data["info"]["params"]["mode"] == "multi"


def test_atomic_write_leaves_no_temp_and_no_half_dataset(tmp_path: Path, monkeypatch) -> None:
    generate_dataset(tmp_path / "ok", num_images=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return render_sample(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_sample", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate_dataset(tmp_path / "broken", num_images=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]


def test_cache_reuse_and_mismatch(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "ds"
    path = generate_dataset(out, num_images=2, seed=1)
    stamp = path.stat().st_mtime_ns

    def never(*args, **kwargs):
        raise AssertionError("a cached dataset must not be drawn again")

    monkeypatch.setattr(synthetic, "render_sample", never)
    assert generate_dataset(out, num_images=2, seed=1) == path and path.stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="seed"):
        generate_dataset(out, num_images=2, seed=2)
    with pytest.raises(DataError, match="num_images"):
        generate_dataset(out, num_images=3, seed=1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not an edgepose synthetic dataset"):
        generate_dataset(other, num_images=1)


def test_generate_into_an_empty_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = generate_dataset(tmp_path / "empty", num_images=1, mode="single", image_size=(96, 128))
    assert json.loads(path.read_text())["images"][0]["width"] == 96


@pytest.mark.parametrize("kwargs, match", [
    ({"num_images": 0}, "num_images"),
    ({"num_images": 2, "mode": "singel"}, "did you mean 'single'"),
    ({"num_images": 2, "image_size": (32, 32)}, "image_size"),
    ({"num_images": 2, "image_size": (192,)}, "image_size"),
    ({"num_images": 2, "max_people": 0}, "max_people"),
    ({"num_images": 2, "seed": -1}, "seed"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        generate_dataset(tmp_path / "ds", **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "ds").exists()


def test_render_sample_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(UnknownNameError, match="did you mean 'multi'"):
        render_sample(rng, mode="mutli")
    with pytest.raises(ConfigError, match="image_size"):
        render_sample(rng, image_size=(20, 300))
    with pytest.raises(ConfigError, match="max_people"):
        render_sample(rng, mode="multi", max_people=0)


def test_progress_goes_to_stderr(tmp_path: Path, capsys) -> None:
    generate_dataset(tmp_path / "ds", num_images=2, progress=True)
    captured = capsys.readouterr()
    assert "2/2" in captured.err and captured.out == ""


def test_draw_annotations_marks_keypoints_without_touching_input(single: list) -> None:
    image, anns = single[0]
    before = image.copy()
    drawn = draw_annotations(image, anns)
    assert np.array_equal(image, before) and drawn.shape == image.shape
    kp = anns[0]["keypoints"]
    for k in np.flatnonzero(kp[:, 2] > 0):
        x, y = kp[k, :2].round().astype(int)
        window = (slice(max(0, y - 2), y + 3), slice(max(0, x - 2), x + 3))
        assert (drawn[window] != image[window]).any(), f"keypoint {k} not drawn"
    flat = [dict(a, keypoints=a["keypoints"].ravel().tolist()) for a in anns]
    assert np.array_equal(draw_annotations(image, flat), drawn)


def test_annotation_ids_are_unique_in_multi_person_scenes(tmp_path):
    import json

    ann = generate_dataset(tmp_path / "ids", num_images=12, mode="multi", seed=3)
    ids = [a["id"] for a in json.loads(ann.read_text())["annotations"]]
    assert len(ids) > 12 and len(set(ids)) == len(ids)
