"""The window DARK step (codecs/dark.py, what decode runs) against the whole-map definition in heatmap.py."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.codecs import HeatmapCodec
from edgepose.codecs.dark import dark_window
from edgepose.codecs.heatmap import argmax_2d, taylor_offset, taylor_offset_reference


def gaussians(rng: np.random.Generator, m: int, w: int, h: int, sigma: float = 2.0) -> np.ndarray:
    """(m, h, w) scaled Gaussians centred anywhere from just off the map to its corners, some noisy."""
    centres = rng.uniform([-1.0, -1.0], [w, h], (m, 2))
    centres[:4] = [[0.0, 0.0], [w - 1.0, h - 1.0], [0.3, h - 1.2], [w - 0.8, 0.5]]
    ys, xs = np.mgrid[0:h, 0:w]
    d2 = (xs[None] - centres[:, 0, None, None]) ** 2 + (ys[None] - centres[:, 1, None, None]) ** 2
    maps = np.exp(-d2 / (2 * sigma**2)) * rng.uniform(0.2, 1.0, (m, 1, 1))
    maps[m // 2:] += rng.normal(0, 0.02, maps[m // 2:].shape)
    return maps.astype(np.float32)


def both(maps: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = argmax_2d(maps)
    return taylor_offset(maps, x, y, kernel), taylor_offset_reference(maps, x, y, kernel)


@pytest.mark.parametrize("w, h, kernel", [(24, 32, 11), (48, 64, 11), (24, 32, 7), (17, 9, 5), (8, 6, 11),
                                          (2, 5, 3), (12, 12, 1), (4, 2, 1), (1, 7, 3), (3, 40, 11), (5, 5, 9),
                                          (64, 48, 17)])
def test_window_step_equals_whole_map_step(w: int, h: int, kernel: int) -> None:
    """Maps wider and narrower than the window (both ends padded in one row), axes shorter than 3 cells,
    OpenCV's fixed 5 / 7-tap tables and the sigma formula: the same step to float64 rounding."""
    rng = np.random.default_rng(w * 100 + h + kernel)
    maps = gaussians(rng, 40, w, h)
    fast, ref = both(maps, kernel)
    np.testing.assert_allclose(fast, ref, atol=1e-6, rtol=0)
    if min(w, h) >= 8:
        assert (np.abs(ref) > 0.05).mean() > 0.3  # the step does work here, not just zeros on both sides


def test_window_step_on_rough_maps() -> None:
    """Random (non-Gaussian) maps, where the log is far from quadratic and the caps bite."""
    rng = np.random.default_rng(3)
    maps = rng.random((64, 32, 24)).astype(np.float32) ** 3
    fast, ref = both(maps, 11)
    np.testing.assert_allclose(fast, ref, atol=1e-6, rtol=0)


def test_window_step_is_zero_where_the_reference_is() -> None:
    maps = np.full((6, 32, 24), -1.0, np.float32)
    maps[0] = 0.0  # all zero
    maps[1] = 0.5  # constant positive: flat log, singular Hessian
    maps[2, 20, 10] = 1e-9  # a lone tiny peak on a negative map
    maps[3, 0, 0] = 0.0  # maximum exactly 0, in the corner
    maps[4] = np.linspace(0, 1, 24, dtype=np.float32)  # a ramp: the step would leave the cell
    fast, ref = both(maps, 11)
    np.testing.assert_array_equal(ref, 0.0)
    np.testing.assert_array_equal(fast, 0.0)


def test_codec_decode_uses_the_window_step() -> None:
    codec = HeatmapCodec(input_size=(96, 128), heatmap_size=(24, 32), method="dark")
    maps = gaussians(np.random.default_rng(5), 17, 24, 32)
    x, y, score = argmax_2d(maps)
    step = taylor_offset_reference(maps, x, y, codec.blur_kernel)
    out = codec.decode(maps)[0]
    np.testing.assert_allclose(out[:, 0], (x + step[:, 0]) / codec.scale[0], atol=1e-5)
    np.testing.assert_allclose(out[:, 1], (y + step[:, 1]) / codec.scale[1], atol=1e-5)
    np.testing.assert_array_equal(out[:, 2], score)


def test_tables_are_cached_and_read_only() -> None:
    t = dark_window(24, 32, 11)
    assert dark_window(24, 32, 11) is t
    assert t.span == 13 and t.index_y.shape == (32, 169) and t.index_x.shape == (24, 169)
    assert t.col_pad.shape == (24, 13, 13) and t.row_pad.shape == (32, 13, 13)
    with pytest.raises(ValueError):
        t.blur[0, 0] = 1.0
