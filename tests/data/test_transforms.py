"""Geometric / colour transforms: exact inverse mapping, flips against the schema, crop consistency."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.data.augment import BottomUpTransform, TopDownTransform, color_jitter
from edgepose.data.coco import CocoKeypoints
from edgepose.data.transforms import (
    affine_crop,
    box_to_center_scale,
    get_affine_matrix,
    get_udp_affine_matrix,
    hflip_image,
    hflip_keypoints,
    invert_affine,
    letterbox,
    normalize,
    transform_points,
)
from edgepose.errors import ConfigError, InputError
from edgepose.keypoints import COCO17, MPII16

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _ramp(w: int = 160, h: int = 120) -> np.ndarray:
    """float32 image whose channels 0 / 1 hold each pixel's own x / y (bilinear reproduces it exactly)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([xx, yy, np.zeros_like(xx)])


def _grid(w: int, h: int) -> np.ndarray:
    v, u = np.mgrid[0:h, 0:w]
    return np.dstack([u, v]).astype(np.float64)


@pytest.mark.parametrize("rot", [0.0, 17.0, -40.0])
@pytest.mark.parametrize("udp", [False, True])
def test_affine_crop_inverse_maps_every_pixel_back(rot: float, udp: bool) -> None:
    crop, M = affine_crop(_ramp(), (83.3, 61.7), (60.0, 80.0), (48, 64), rot, border_value=-1, udp=udp)
    assert crop.shape == (64, 48, 3)
    back = transform_points(_grid(48, 64), invert_affine(M))
    inside = crop[..., 0] >= 0
    assert inside.mean() > 0.9
    np.testing.assert_allclose(crop[..., :2][inside], back[inside], atol=0.01)


def test_affine_crop_without_scale_or_rotation_is_a_plain_slice() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(100, 120, 3), dtype=np.uint8)
    W, H = 40, 30
    crop, M = affine_crop(img, (50 + W / 2, 20 + H / 2), (W, H), (W, H))
    np.testing.assert_array_equal(crop, img[20:20 + H, 50:50 + W])
    np.testing.assert_allclose(M, [[1, 0, -50], [0, 1, -20]])


def test_affine_matrix_maps_centre_and_box_edges() -> None:
    c, s = np.array([100.0, 50.0]), np.array([60.0, 80.0])
    M = get_affine_matrix(c, s, (48, 64))
    np.testing.assert_allclose(transform_points(c, M), [24, 32])
    np.testing.assert_allclose(transform_points(c + [30.0, 40.0], M), [48, 64])
    Mu = get_udp_affine_matrix(c, s, (48, 64))
    np.testing.assert_allclose(transform_points(c, Mu), [23.5, 31.5])
    np.testing.assert_allclose(transform_points(c + [30.0, 40.0], Mu), [47, 63])
    # Positive rotation turns the content counter-clockwise: a point right of the centre moves up.
    Mr = get_affine_matrix(c, (64.0, 64.0), (64, 64), 90.0)
    np.testing.assert_allclose(transform_points(c + [10.0, 0.0], Mr), [32, 22], atol=1e-9)
    np.testing.assert_allclose(get_affine_matrix(c, s, (48, 64), 30.0, inverse=True),
                               invert_affine(get_affine_matrix(c, s, (48, 64), 30.0)))


def test_transform_points_round_trip_and_dtype() -> None:
    rng = np.random.default_rng(1)
    M = get_affine_matrix((321.5, 210.25), (150.0, 200.0), (192, 256), rot_deg=23.0)
    pts = rng.uniform(-100, 700, size=(5, 17, 2))
    np.testing.assert_allclose(transform_points(transform_points(pts, M), invert_affine(M)), pts, atol=1e-9)
    assert transform_points(pts.astype(np.float32), M).dtype == np.float32
    assert transform_points(np.array([1, 2]), M).dtype == np.float64
    with pytest.raises(InputError, match="singular"):
        invert_affine(np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"\(\.\.\., 2\)"):
        transform_points(np.zeros((4, 3)), M)


@pytest.mark.parametrize("box", [[10, 20, 110, 60], [10, 20, 40, 220]])
def test_box_to_center_scale_fixes_aspect_ratio(box: list[float]) -> None:
    aspect = 192 / 256
    center, scale = box_to_center_scale(box, aspect, padding=1.25)
    np.testing.assert_allclose(center, [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    assert scale[0] / scale[1] == pytest.approx(aspect)
    w, h = box[2] - box[0], box[3] - box[1]
    assert scale[0] >= 1.25 * w - 1e-9 and scale[1] >= 1.25 * h - 1e-9
    assert scale[0] == pytest.approx(1.25 * w) or scale[1] == pytest.approx(1.25 * h)
    with pytest.raises(InputError):
        box_to_center_scale([5, 5, 5, 5], aspect)


def test_letterbox_round_trip_and_centering() -> None:
    out, M = letterbox(_ramp(160, 120), (100, 100), pad_value=-1)
    assert out.shape == (100, 100, 3)
    # 160x120 -> 100x75, 12.5 px of padding above and below.
    rows_with_content = np.flatnonzero((out[..., 0] >= 0).any(axis=1))
    assert rows_with_content[0] in (12, 13) and rows_with_content[-1] in (86, 87)
    # Pixel edges of the source land exactly on the output edges / padding borders (12.5 px each side).
    edges = transform_points(np.array([[-0.5, -0.5], [159.5, 119.5]]), M)
    np.testing.assert_allclose(edges, [[-0.5, 12.0], [99.5, 87.0]], atol=1e-9)
    back = transform_points(_grid(100, 100), invert_affine(M))
    inner = (back[..., 0] >= 0) & (back[..., 0] <= 159) & (back[..., 1] >= 0) & (back[..., 1] <= 119)
    np.testing.assert_allclose(out[..., :2][inner], back[inner], atol=0.01)
    pts = np.array([[0.0, 0.0], [159.0, 119.0], [80.3, 40.7]])
    np.testing.assert_allclose(transform_points(transform_points(pts, M), invert_affine(M)), pts, atol=1e-9)


@pytest.mark.parametrize("schema", [COCO17, MPII16])
def test_hflip_keypoints_follows_the_schema(schema) -> None:
    rng = np.random.default_rng(2)
    k = schema.num_keypoints
    kps = np.concatenate([rng.uniform(0, 300, (3, k, 2)), np.full((3, k, 1), 2.0)], axis=-1).astype(np.float32)
    kps[1, schema.index("left_wrist")] = 0.0  # not labelled
    width = 320
    out = hflip_keypoints(kps, width, schema)
    lw, rw = schema.index("left_wrist"), schema.index("right_wrist")
    np.testing.assert_allclose(out[0, lw], [width - 1 - kps[0, rw, 0], kps[0, rw, 1], 2.0])
    np.testing.assert_allclose(out[0, rw], [width - 1 - kps[0, lw, 0], kps[0, lw, 1], 2.0])
    np.testing.assert_array_equal(out[1, rw], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(hflip_keypoints(out, width, schema.name), kps, atol=1e-4)
    same = hflip_keypoints(kps, width, schema.flip_index())
    np.testing.assert_array_equal(same, out)
    with pytest.raises(InputError, match="permutation"):
        hflip_keypoints(kps, width, list(range(k - 1)))


def test_hflip_image_and_keypoints_agree() -> None:
    img = np.zeros((50, 80, 3), np.uint8)
    img[10, 20] = (255, 0, 0)
    flipped = hflip_image(img)
    np.testing.assert_array_equal(flipped, cv2.flip(img, 1))
    kps = np.zeros((17, 3), np.float32)
    kps[COCO17.index("left_wrist")] = (20, 10, 2)
    fk = hflip_keypoints(kps, 80, COCO17)
    x, y, _ = fk[COCO17.index("right_wrist")].astype(int)
    assert tuple(flipped[y, x]) == (255, 0, 0)


def _coco_person() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ds = CocoKeypoints(DATA / "coco-mini" / "test_coco.json")
    inst = max(ds.instances(), key=lambda i: i.num_visible)
    return ds.load_image(inst.image_id), inst.bbox_xyxy, inst.keypoints


def test_topdown_eval_maps_keypoints_into_the_crop_and_back() -> None:
    image, box, kps = _coco_person()
    tf = TopDownTransform((192, 256), train=False)
    crop, out, meta = tf(image, box, kps)
    assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8
    vis = kps[:, 2] > 0
    np.testing.assert_array_equal(out[:, 2], kps[:, 2])
    assert np.all((out[vis, :2] >= 0) & (out[vis, :2] <= [191, 255]))
    back = transform_points(out[vis, :2].astype(np.float64), invert_affine(meta["M"]))
    np.testing.assert_allclose(back, kps[vis, :2], atol=0.01)
    crop2, out2, _ = tf(image, box, kps)
    np.testing.assert_array_equal(crop, crop2)
    np.testing.assert_array_equal(out, out2)


def _dot_image(kps: np.ndarray, joint: int, shape=(300, 400)) -> np.ndarray:
    img = np.zeros((*shape, 3), np.uint8)
    x, y = kps[joint, :2].astype(int)
    cv2.circle(img, (int(x), int(y)), 6, (255, 255, 255), -1)
    return img


def test_topdown_train_flip_keeps_image_and_joints_consistent() -> None:
    kps = np.zeros((17, 3), np.float32)
    lw, rw = COCO17.index("left_wrist"), COCO17.index("right_wrist")
    kps[lw] = (150, 120, 2)
    kps[rw] = (250, 180, 2)
    img = _dot_image(kps, lw)
    tf = TopDownTransform((96, 128), train=True, rng=np.random.default_rng(3), flip_prob=1.0,
                          rot_prob=1.0, color=False)
    for _ in range(5):
        crop, out, meta = tf(img, [120, 90, 280, 220], kps)
        assert meta["flip"] and meta["rot"] != 0.0
        x, y = np.rint(out[rw, :2]).astype(int)
        assert out[rw, 2] == 2 and crop[y, x].min() > 200  # the dot of the left wrist, now 'right_wrist'
        back = transform_points(out[COCO17.flip_index(), :2].astype(np.float64), invert_affine(meta["M"]))
        np.testing.assert_allclose(back[[lw, rw]], kps[[lw, rw], :2], atol=0.01)


def test_topdown_joints_leaving_the_crop_become_invisible() -> None:
    kps = np.zeros((17, 3), np.float32)
    kps[0] = (100, 100, 2)
    kps[1] = (390, 290, 2)  # far outside the box
    tf = TopDownTransform((48, 64), train=False)
    _, out, _ = tf(np.zeros((300, 400, 3), np.uint8), [80, 80, 120, 130], kps)
    assert out[0, 2] == 2
    np.testing.assert_array_equal(out[1], [0, 0, 0])
    with pytest.raises(InputError, match=r"\(17, 3\)"):
        tf(np.zeros((300, 400, 3), np.uint8), [80, 80, 120, 130], np.zeros((16, 3)))


def test_bottomup_eval_is_a_letterbox() -> None:
    image, box, kps = _coco_person()
    tf = BottomUpTransform((256, 256), train=False)
    out, okps, oboxes, meta = tf(image, kps[None], box[None])
    ref, M = letterbox(image, (256, 256))
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(meta["M"], M)
    vis = kps[:, 2] > 0
    np.testing.assert_allclose(okps[0, vis, :2], transform_points(kps[vis, :2], M), atol=1e-3)
    np.testing.assert_allclose(oboxes[0], transform_points(box.reshape(2, 2), M).reshape(4), atol=1e-3)


def test_bottomup_train_drops_people_that_leave_and_keeps_dots_aligned() -> None:
    kps = np.zeros((2, 17, 3), np.float32)
    lw = COCO17.index("left_wrist")
    kps[0, lw] = (200, 150, 2)  # centre person
    kps[1, lw] = (5, 5, 2)  # corner person: leaves the image when zoomed 2x about the centre
    boxes = np.array([[170, 120, 230, 190], [0, 0, 12, 12]], np.float32)
    img = _dot_image(kps[0], lw)
    tf = BottomUpTransform((200, 150), train=True, rng=np.random.default_rng(4), scale_range=(2.0, 2.0),
                           rot_range=10.0, shift_range=0.0, flip_prob=1.0, color=False)
    out, okps, oboxes, meta = tf(img, kps, boxes)
    assert meta["flip"] and meta["keep"].tolist() == [0]
    assert okps.shape == (1, 17, 3) and oboxes.shape == (1, 4)
    x, y = np.rint(okps[0, COCO17.index("right_wrist"), :2]).astype(int)
    assert out[y, x].min() > 200
    assert np.all(oboxes[:, [0, 1]] >= 0) and np.all(oboxes[:, [2, 3]] <= [199, 149])
    assert np.all(oboxes[:, 2] > oboxes[:, 0]) and np.all(oboxes[:, 3] > oboxes[:, 1])


def test_normalize_layouts_and_values() -> None:
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # act on pixels / 255
    x = normalize(img, mean, std)
    assert x.shape == (3, 4, 6) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[0], (img[..., 2] / 255.0 - mean[0]) / std[0], rtol=1e-5, atol=1e-5)  # R first
    y = normalize(np.stack([img, img]), mean, std, to_rgb=False, layout="NHWC")
    assert y.shape == (2, 4, 6, 3)
    np.testing.assert_allclose(y[1, ..., 0], (img[..., 0] / 255.0 - mean[0]) / std[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="layout"):
        normalize(img, mean, std, layout="CHW")
    with pytest.raises(InputError):
        normalize(img[..., :2], mean, std)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("to_rgb", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_to_tensor_equals_normalize_bit_for_bit(layout: str, to_rgb: bool, dtype: str) -> None:
    # channel-last float input goes through a lookup table (cv2.LUT), channel swaps through cv2: the runtimes,
    # calibration and golden samples (hashed) all depend on these bits being normalize's
    from edgepose.pipeline.preprocess import InputSpec, to_tensor

    rng = np.random.default_rng(6)
    imgs = rng.integers(0, 256, size=(3, 37, 29, 3), dtype=np.uint8)
    imgs[0, 0, :, 0] = imgs[0, 1, :, 1] = imgs[0, 2, :, 2] = np.arange(29) * 9  # 0 and 252 in every channel
    imgs[0, 3, 0] = 255
    for mean, std in [((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), ((0.5,) * 3, (0.5,) * 3)]:
        spec = InputSpec((29, 37), mean=mean, std=std, layout=layout, to_rgb=to_rgb, dtype=dtype)
        got = to_tensor(imgs, spec)
        if dtype == "float32":
            want = normalize(imgs, mean, std, to_rgb=to_rgb, layout=layout)
        else:
            want = imgs[..., ::-1] if to_rgb else imgs
            want = want.transpose(0, 3, 1, 2) if layout == "NCHW" else want
        assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
        assert got.tobytes() == np.ascontiguousarray(want).tobytes()
    empty = to_tensor(imgs[:0], InputSpec((29, 37), layout=layout, to_rgb=to_rgb, dtype=dtype))
    assert empty.shape[0] == 0 and empty.dtype == np.dtype(dtype)


def test_color_jitter_is_seeded_and_identity_without_jitter() -> None:
    img = np.random.default_rng(6).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    same = color_jitter(img, np.random.default_rng(0), 0.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(same, img)
    a = color_jitter(img, np.random.default_rng(7))
    b = color_jitter(img, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == img.shape and a.dtype == np.uint8 and not np.array_equal(a, img)
