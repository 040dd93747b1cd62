"""HeatmapCodec: encode/decode round trips (argmax, DARK, UDP), coordinate conventions, edge cases, registry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgepose.codecs import HeatmapCodec, available_codecs, codec_from_dict, get_codec
from edgepose.errors import ConfigError, InputError, UnknownNameError

MARGIN = 3.0  # heatmap px kept from the border in the round trips


def random_heatmap_points(codec: HeatmapCodec, n: int, seed: int) -> np.ndarray:
    """(n, 2) random sub-pixel heatmap coordinates at least MARGIN px inside the map."""
    rng = np.random.default_rng(seed)
    w, h = codec.heatmap_size
    return np.stack([rng.uniform(MARGIN, w - 1 - MARGIN, n), rng.uniform(MARGIN, h - 1 - MARGIN, n)], 1)


def round_trip_error(codec: HeatmapCodec, n: int = 150, seed: int = 0) -> np.ndarray:
    """Encode n single joints at random positions, decode, return (n, 2) |error| in heatmap px."""
    pts = random_heatmap_points(codec, n, seed)
    sx, sy = codec.scale
    kpts = np.stack([pts[:, 0] / sx, pts[:, 1] / sy, np.ones(n)], 1)[:, None]  # (n, 1, 3) input px
    heatmaps = np.stack([codec.encode(k)[0] for k in kpts])  # (n, 1, H, W)
    decoded = codec.decode(heatmaps)
    assert decoded.shape == (n, 1, 3) and decoded.dtype == np.float32
    # The input-pixel error divided by the stride (this codec's exact scale per axis).
    return np.abs(np.stack([decoded[:, 0, 0] * sx, decoded[:, 0, 1] * sy], 1) - pts)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_argmax_round_trip_within_quarter_pixel(sigma: float) -> None:
    err = round_trip_error(HeatmapCodec(method="argmax", sigma=sigma), seed=int(sigma * 10))
    assert err.max() <= 0.25 + 1e-4  # per axis: quarter offset leaves at most 0.25 px
    assert err.max() > 0.1  # and it is an argmax decode, not something finer


@pytest.mark.parametrize("method", ["dark", "udp"])
@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_dark_and_udp_round_trip_within_005_pixel(method: str, sigma: float) -> None:
    err = round_trip_error(HeatmapCodec(method=method, sigma=sigma), seed=int(sigma * 10) + len(method))
    assert np.hypot(err[:, 0], err[:, 1]).max() <= 0.05


@pytest.mark.parametrize("method", ["argmax", "dark", "udp"])
def test_round_trip_other_sizes(method: str) -> None:
    codec = HeatmapCodec(input_size=(256, 256), heatmap_size=(64, 64), sigma=2.0, method=method)
    tol = 0.25 + 1e-4 if method == "argmax" else 0.05
    assert round_trip_error(codec, n=60, seed=7).max() <= tol


def test_coordinate_conventions() -> None:
    # MSRA: x_hm = x * W_hm / W_in → input (40, 100) is heatmap (10, 25).
    hm, weight = HeatmapCodec(method="argmax").encode(np.array([[40.0, 100.0, 2.0]]))
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (25, 10) and weight[0] == 1
    assert hm[0, 25, 10] == pytest.approx(1.0)
    # UDP: x_hm = x * (W_hm - 1) / (W_in - 1) → the last input pixel maps to the last heatmap pixel.
    hm, _ = HeatmapCodec(method="udp").encode(np.array([[191.0, 255.0, 1.0]]))
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (63, 47)
    assert hm[0, 63, 47] == pytest.approx(1.0)
    assert HeatmapCodec().stride == 4.0


def test_encode_gaussian_is_centred_at_float_coordinate() -> None:
    codec = HeatmapCodec(sigma=2.0)
    hm, _ = codec.encode(np.array([[41.0, 99.0, 1.0]]))  # heatmap (10.25, 24.75)
    expected = np.exp(-((10 - 10.25) ** 2 + (25 - 24.75) ** 2) / 8)
    assert hm[0, 25, 10] == pytest.approx(expected, rel=1e-5)
    assert hm.dtype == np.float32 and hm.shape == (1, 64, 48)


def test_encode_multiple_instances_merge_by_max_and_weights() -> None:
    codec = HeatmapCodec()
    kpts = np.zeros((2, 3, 3))
    kpts[0] = [[20, 20, 2], [0, 0, 0], [-400, 50, 2]]  # joint 1 unlabelled, joint 2 far outside
    kpts[1] = [[160, 220, 1], [0, 0, 0], [-300, 60, 1]]
    hm, weight = codec.encode(kpts)
    assert hm.shape == (3, 64, 48) and weight.dtype == np.float32
    np.testing.assert_array_equal(weight, [1, 0, 0])
    assert hm[0, 5, 5] == pytest.approx(1.0) and hm[0, 55, 40] == pytest.approx(1.0)
    assert not hm[1].any() and not hm[2].any()
    # A joint just outside whose Gaussian still reaches the map keeps weight 1.
    _, w = codec.encode(np.array([[-4.0, 100.0, 1.0]]))  # heatmap x = -1, 3 sigma = 6 px reach
    assert w[0] == 1


def test_unlabelled_joints_get_zero_weight() -> None:
    kpts = np.array([[50.0, 60.0, 0.0], [50.0, 60.0, 1.0]])
    hm, weight = HeatmapCodec().encode(kpts)
    np.testing.assert_array_equal(weight, [0, 1])
    assert not hm[0].any() and hm[1].max() > 0.9


@pytest.mark.parametrize("method", ["argmax", "dark", "udp"])
def test_all_zero_and_negative_maps_decode_finite(method: str) -> None:
    codec = HeatmapCodec(method=method)
    maps = np.zeros((2, 3, 64, 48), dtype=np.float32)
    maps[1] = -np.random.default_rng(0).uniform(0.1, 1.0, (3, 64, 48))
    out = codec.decode(maps)
    assert out.shape == (2, 3, 3) and np.isfinite(out).all()
    np.testing.assert_array_equal(out[0, :, 2], 0.0)
    assert (out[1, :, 2] < 0).all()  # score = max, negative here
    w_in, h_in = codec.input_size
    assert (out[..., 0] >= -1).all() and (out[..., 0] <= w_in).all()
    assert (out[..., 1] >= -1).all() and (out[..., 1] <= h_in).all()


@pytest.mark.parametrize("method", ["argmax", "dark", "udp"])
def test_max_on_border_decodes_near_border(method: str) -> None:
    codec = HeatmapCodec(method=method)
    sx, sy = codec.scale
    hm, _ = codec.encode(np.array([[0.0, 0.0, 1.0], [47.0 / sx, 30.0 / sy, 1.0]]))  # corner, right edge
    out = codec.decode(hm)[0]
    assert np.isfinite(out).all()
    hm_xy = out[:, :2] * np.array([sx, sy])
    np.testing.assert_allclose(hm_xy, [[0.0, 0.0], [47.0, 30.0]], atol=0.3)
    assert out[:, 2] == pytest.approx([1.0, 1.0], abs=1e-6)


def test_dark_score_is_unblurred_max() -> None:
    codec = HeatmapCodec(method="dark")
    hm, _ = codec.encode(np.array([[80.0, 120.0, 1.0]]))
    hm *= 0.7
    assert codec.decode(hm)[0, 0, 2] == pytest.approx(0.7, rel=1e-6)


def test_decode_rejects_wrong_shapes() -> None:
    codec = HeatmapCodec()
    with pytest.raises(InputError, match="heatmaps"):
        codec.decode(np.zeros((64, 48)))
    with pytest.raises(InputError, match="heatmaps"):
        codec.decode(np.zeros((1, 1, 1, 64, 48)))
    with pytest.raises(InputError, match="heatmap_size"):
        codec.decode(np.zeros((1, 17, 48, 64)))
    with pytest.raises(InputError, match="keypoints"):
        codec.encode(np.zeros(3))
    with pytest.raises(InputError, match="keypoints"):
        codec.encode(np.zeros((17, 2)))


def test_invalid_parameters() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'dark'"):
        HeatmapCodec(method="darc")
    with pytest.raises(ConfigError, match="sigma"):
        HeatmapCodec(sigma=0)
    with pytest.raises(ConfigError, match="blur_kernel"):
        HeatmapCodec(blur_kernel=10)
    with pytest.raises(ConfigError, match="stride"):
        HeatmapCodec(input_size=(192, 256), heatmap_size=(48, 32))
    with pytest.raises(ConfigError, match="input_size"):
        HeatmapCodec(input_size=(192,))


def test_to_dict_round_trip_and_registry() -> None:
    codec = HeatmapCodec(input_size=(288, 384), heatmap_size=(72, 96), sigma=3.0, method="udp", blur_kernel=7)
    d = json.loads(json.dumps(codec.to_dict()))
    again = codec_from_dict(d)
    assert isinstance(again, HeatmapCodec) and again.to_dict() == codec.to_dict()
    assert HeatmapCodec.from_dict(d).method == "udp"
    assert get_codec("heatmap", sigma=1.5).sigma == 1.5
    assert {"heatmap", "centernet"} <= set(available_codecs())
    with pytest.raises(UnknownNameError, match="did you mean 'heatmap'"):
        get_codec("heatmapp")
    with pytest.raises(ConfigError, match="kind"):
        HeatmapCodec.from_dict({"kind": "centernet"})
    with pytest.raises(ConfigError, match="kind"):
        codec_from_dict({"sigma": 2.0})
    with pytest.raises(ConfigError, match="parameters"):
        get_codec("heatmap", sigmaa=2.0)


def test_codecs_package_does_not_import_torch() -> None:
    code = ("import sys, edgepose.codecs, edgepose.codecs.heatmap, edgepose.codecs.centernet; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("blur_kernel", [1, 3, 7])
def test_dark_round_trip_other_blur_kernels(blur_kernel: int) -> None:
    err = round_trip_error(HeatmapCodec(method="dark", blur_kernel=blur_kernel), n=60, seed=blur_kernel)
    assert np.hypot(err[:, 0], err[:, 1]).max() <= 0.05


def _nan_inf_cases(rng: np.random.Generator) -> list[np.ndarray]:
    """(1, 17, 32, 24) batches, each with one kind of non-finite cell in map 2 (a batch with one NaN map takes
    the nan_to_num path for all its maps, so each case gets its own)."""
    base = rng.random((1, 17, 32, 24)).astype(np.float32) ** 3
    cases = []
    for fill in ("nan", "neg-inf-low", "neg-inf-max", "all-neg-inf", "pos-inf", "zeros", "corner", "neighbour"):
        maps = base.copy()
        m = maps[0, 2]
        if fill == "nan":
            m[5, 7] = np.nan
        elif fill == "neg-inf-low":
            m[3:9, 2:6] = -np.inf  # below a positive maximum
        elif fill == "neg-inf-max":
            m -= 2.0
            m[30, 20] = -np.inf  # a negative map: its -inf cell, read as 0, is the maximum
        elif fill == "all-neg-inf":
            m[:] = -np.inf
        elif fill == "pos-inf":
            m[10, 10] = np.inf
        elif fill == "zeros":
            m[:] = 0.0
            m[0, 2:6] = -np.inf  # a tie at 0 with cells before the first finite one
        elif fill == "corner":
            m[0, 0] = m[31, 23] = -np.inf  # corner cells, inside every border window
        else:  # the quarter offset compares neighbours: 0 and -inf differ beside a negative one
            m[:] = -1.0
            m[10, 10], m[10, 9], m[10, 11] = 1.0, -np.inf, -0.5
        cases.append(maps)
    return cases


@pytest.mark.parametrize("method", ["argmax", "dark", "udp"])
def test_decode_reads_nan_and_inf_as_zero(method: str) -> None:
    """NaN / ±inf cells decode exactly as nan_to_num(.., 0) of the maps would (the decode skips that copy
    when every maximum is finite and positive)."""
    codec = HeatmapCodec(input_size=(96, 128), heatmap_size=(24, 32), method=method)
    for maps in _nan_inf_cases(np.random.default_rng(4)):
        expected = codec.decode(np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0))
        out = codec.decode(maps)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out, expected)
