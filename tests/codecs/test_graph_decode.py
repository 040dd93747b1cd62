"""In-graph decoders (torch) against the numpy reference decodes, plus ONNX export of the decoders."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgepose.codecs import CenterNetCodec, HeatmapCodec  # noqa: E402
from edgepose.codecs.centernet import OUTPUT_NAMES  # noqa: E402
from edgepose.codecs.graph import CenterNetDecode, DecodedModel, HeatmapDecode  # noqa: E402
from edgepose.errors import InputError  # noqa: E402

TOL = 1e-3  # input px
K = 5


def logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p)).astype(np.float32)


def distinct_maps(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 3.0) -> np.ndarray:
    """Continuous random maps whose values are all distinct (a random permutation of a fine grid)."""
    values = (np.arange(np.prod(shape), dtype=np.float64) / np.prod(shape) - 0.5) * 2 * scale
    return rng.permutation(values).reshape(shape).astype(np.float32)


def torch_decode(decoder: torch.nn.Module, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    with torch.no_grad():
        out = decoder(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    return tuple(o.numpy() for o in out) if isinstance(out, tuple) else (out.numpy(),)


def assert_same(host: tuple[np.ndarray, ...], graph: tuple[np.ndarray, ...]) -> None:
    assert len(host) == len(graph)
    for h, g in zip(host, graph):
        assert h.shape == g.shape
        np.testing.assert_allclose(g, h, atol=TOL, rtol=0)


# --------------------------------------------------------------------------------------------- heatmap
def test_heatmap_graph_matches_host_on_random_maps() -> None:
    codec = HeatmapCodec()
    rng = np.random.default_rng(0)
    maps = distinct_maps(rng, (3, 17, 64, 48))
    maps[0, 0, 0, 0] = 10.0  # maxima on the corner and the border
    maps[0, 1, 63, 20] = 10.0
    maps[1, 2] = 0.0  # all-zero map
    host = codec.decode(maps)
    graph = torch_decode(HeatmapDecode(codec).eval(), maps)[0]
    assert_same((host,), (graph,))
    frac = (host[..., :2] / codec.stride) % 1.0  # the quarter offsets are exercised both ways
    assert np.isclose(frac, 0.25).any() and np.isclose(frac, 0.75).any()


def test_heatmap_graph_matches_host_on_encoded_targets() -> None:
    codec = HeatmapCodec(input_size=(256, 256), heatmap_size=(64, 64))
    rng = np.random.default_rng(1)
    kpts = np.concatenate([rng.uniform(0, 256, (4, 17, 2)), rng.integers(0, 3, (4, 17, 1))], 2)
    maps = np.stack([codec.encode(k)[0] for k in kpts])
    assert_same((codec.decode(maps),), torch_decode(HeatmapDecode(codec).eval(), maps))


# DARK / UDP in the graph run in float32 where numpy runs in float64. Measured graph vs host: Gaussian targets
# below up to 3.1e-5 input px (7.5e-6 heatmap px); default-model heatmaps up to 5.7e-5 input px here and 6.5e-5
# over 41 crops (1.6e-5 heatmap px), where the same graph in float64 gives 3.8e-6 (the float32 rounding of the
# host output); ONNX Runtime vs eager 1.9e-5 input px. TOL (1e-3 input px = 2.5e-4 heatmap px at stride 4)
# leaves a 15x margin and still catches a wrong kernel (OpenCV's 5/7-tap tables vs the sigma formula: 2 fail).
def gaussian_maps(codec: HeatmapCodec, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 17, H, W) scaled Gaussian targets and their centres (n, 17, 2) in heatmap px: sub-pixel centres
    anywhere on the map, some on or just off the border and in the corners, a few with mild noise."""
    w, h = codec.heatmap_size
    centres = rng.uniform([-0.4, -0.4], [w - 0.6, h - 0.6], (n, 17, 2))
    centres[:, :4] = [[0.0, rng.uniform(0, h - 1)], [w - 1.0, 0.3], [0.2, h - 1.0], [w - 1.0, h - 1.0]]
    centres[:, 4:6] = [[-0.7, h / 2 + 0.3], [w / 2 - 0.2, h - 0.45]]  # centre off the map
    sx, sy = codec.scale
    kpts = np.concatenate([centres / [sx, sy], np.ones((n, 17, 1))], 2)
    maps = np.stack([codec.encode(k)[0] for k in kpts]) * rng.uniform(0.2, 1.0, (n, 17, 1, 1))
    maps[:, 6:8] += rng.normal(0, 0.01, maps[:, 6:8].shape)
    return maps.astype(np.float32), centres


@pytest.mark.parametrize("method, kernel", [("dark", 11), ("dark", 7), ("udp", 11), ("udp", 5)])
def test_heatmap_graph_dark_matches_host_on_gaussians(method: str, kernel: int) -> None:
    codec = HeatmapCodec(method=method, blur_kernel=kernel)  # 7 and 5 taps: OpenCV's fixed kernel tables
    maps, centres = gaussian_maps(codec, np.random.default_rng(kernel), n=6)
    host = codec.decode(maps)
    assert_same((host,), torch_decode(HeatmapDecode(codec).eval(), maps))
    err = np.abs(host[..., :2] * codec.scale - centres)[:, np.r_[0:4, 8:17]]  # noise-free, centre on the map
    assert err.max() < 0.05 < np.abs(np.round(centres) - centres).mean()  # the Taylor step does the work


@pytest.mark.parametrize("w, h, kernel, method", [(4, 2, 1, "dark"), (1, 7, 3, "dark"), (3, 40, 11, "udp"),
                                                  (5, 5, 9, "dark"), (9, 6, 11, "udp"), (64, 48, 17, "dark")])
def test_heatmap_graph_dark_matches_host_on_small_and_odd_maps(w: int, h: int, kernel: int, method: str) -> None:
    """Maps narrower than the window on one or both axes, axes under 3 cells, kernel 1, UDP (whose scale
    (size - 1) / (input - 1) differs per axis): the graph's float32 window step = the host's."""
    codec = HeatmapCodec(input_size=(4 * w, 4 * h), heatmap_size=(w, h), method=method, blur_kernel=kernel)
    rng = np.random.default_rng(w * 1000 + h * 10 + kernel)
    ys, xs = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(-1.0, w, (2, 17, 1, 1)), rng.uniform(-1.0, h, (2, 17, 1, 1))
    maps = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0) * rng.uniform(0.2, 1.0, (2, 17, 1, 1))
    maps[1, 8:] = rng.random((9, h, w)) ** 3  # rough maps, far from a Gaussian
    maps = maps.astype(np.float32)
    assert_same((codec.decode(maps),), torch_decode(HeatmapDecode(codec).eval(), maps))


def test_heatmap_graph_dark_zero_step_on_empty_and_flat_maps() -> None:
    codec = HeatmapCodec(method="dark")
    maps = distinct_maps(np.random.default_rng(9), (2, 17, 64, 48)) - 10.0  # all negative
    maps[0, 0] = 0.0  # all zero
    maps[0, 1] = -1.0  # constant negative
    maps[0, 2] = 0.5  # constant positive: flat log, singular Hessian
    maps[0, 3, 20, 30] = 0.0  # maximum exactly 0
    maps[0, 4, 10, 10] = 1e-9  # a lone tiny positive peak on a negative map
    host = codec.decode(maps)
    graph = torch_decode(HeatmapDecode(codec).eval(), maps)[0]
    assert np.isfinite(graph).all()
    assert_same((host,), (graph,))
    cells = graph[..., :2] * codec.scale
    np.testing.assert_array_equal(cells, np.round(cells))  # no step anywhere


@pytest.fixture(scope="module")
def default_model_heatmaps() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """The default top-down model (DARK codec), its input crops of synthetic people and its heatmaps."""
    import edgepose
    from edgepose.data.synthetic import render_sample
    from edgepose.pipeline.preprocess import topdown_batch
    from edgepose.runtimes.spec import ModelSpec

    model = edgepose.models.create("simplebaseline-mnv2s-edge", weights="default").eval()
    spec = ModelSpec.from_meta(model.edgepose_meta)
    crops = []
    for i in range(4):
        image, anns = render_sample(np.random.default_rng([7, i]), mode="multi", image_size=(256, 256))
        boxes = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        crops.append(topdown_batch(image, boxes, spec.input)[0])
    x = np.concatenate(crops)
    with torch.no_grad():
        heatmaps = model(torch.from_numpy(x)).numpy()
    return model, x, heatmaps


def test_heatmap_graph_dark_matches_host_on_model_heatmaps(default_model_heatmaps) -> None:
    from edgepose.codecs import codec_from_dict

    model, _, heatmaps = default_model_heatmaps
    codec = codec_from_dict(model.edgepose_meta.codec)
    assert codec.method == "dark" and heatmaps.shape[0] >= 4
    assert_same((codec.decode(heatmaps),), torch_decode(HeatmapDecode(codec).eval(), heatmaps))


def test_graph_decode_keeps_the_codec_method() -> None:
    from edgepose.export.onnx import wrap_for_export
    from edgepose.export.targets.base import Target
    from edgepose.models import create

    for method in ("argmax", "dark", "udp"):
        assert Target().resolve_decode("auto", "heatmap", {"method": method}) == "graph"
    assert Target().resolve_decode("host", "heatmap", {"method": "dark"}) == "host"
    model = create("simplebaseline-mnv2s-edge")
    assert model.edgepose_meta.codec["method"] == "dark"
    assert wrap_for_export(model, "graph").decoder.method == "dark"


def test_heatmap_graph_rejects_wrong_rank_and_size() -> None:
    with pytest.raises(InputError, match="heatmaps"):
        HeatmapDecode(HeatmapCodec())(torch.zeros(17, 64, 48))
    with pytest.raises(InputError, match=r"\(N, K, 64, 48\), got shape \(1, 17, 32, 24\)"):
        HeatmapDecode(HeatmapCodec())(torch.zeros(1, 17, 32, 24))


@pytest.mark.parametrize("method", ["argmax", "dark"])
def test_heatmap_graph_takes_float64_and_float16(method: str) -> None:
    codec = HeatmapCodec(method=method)
    maps = gaussian_maps(codec, np.random.default_rng(4), n=1)[0]
    want = codec.decode(maps)
    for dtype in (torch.float64, torch.float16):
        with torch.no_grad():
            got = HeatmapDecode(codec)(torch.from_numpy(maps).to(dtype)).numpy()
        assert got.dtype == np.float32
        tol = TOL if dtype == torch.float64 else 0.5  # float16 maps lose the sub-pixel detail, not the cell
        np.testing.assert_allclose(got[..., :2], want[..., :2], atol=tol, rtol=0)


def test_heatmap_graph_and_host_give_no_step_on_ridges() -> None:
    """Maps constant along one axis (and one cell tall): the Hessian is singular; float32 rounding in the graph
    must not turn it into a step the float64 host does not take (dark.ANISOTROPY)."""
    codec = HeatmapCodec(method="dark")
    xs = np.arange(48)
    maps = np.zeros((1, 17, 64, 48), np.float32)
    for j in range(17):
        maps[0, j] = np.exp(-((xs - 3 - 2.37 * j) ** 2) / 8)[None, :]
    host = codec.decode(maps)
    assert_same((host,), torch_decode(HeatmapDecode(codec).eval(), maps))
    cells = host[..., :2] * codec.scale
    np.testing.assert_array_equal(cells, np.round(cells))
    tall = HeatmapCodec(input_size=(8, 4), heatmap_size=(2, 1), method="dark", blur_kernel=3)
    maps = np.random.default_rng(0).random((3, 17, 1, 2)).astype(np.float32)
    assert_same((tall.decode(maps),), torch_decode(HeatmapDecode(tall).eval(), maps))


# --------------------------------------------------------------------------------------------- centernet
def make_codec(snap: bool, **kw: object) -> CenterNetCodec:
    return CenterNetCodec(input_size=(64, 64), stride=4, num_keypoints=K, max_people=8, snap=snap, **kw)


def random_outputs(codec: CenterNetCodec, n: int, seed: int) -> list[np.ndarray]:
    """Continuous raw outputs with distinct heatmap values and plausible regressions."""
    rng = np.random.default_rng(seed)
    fw, fh = codec.feature_size
    return [
        distinct_maps(rng, (n, 1, fh, fw)),
        rng.uniform(0, 1, (n, 2, fh, fw)).astype(np.float32),
        rng.uniform(0.5, 10, (n, 2, fh, fw)).astype(np.float32),  # some boxes below the 1-px snap floor
        rng.normal(0, 2.5, (n, 2 * K, fh, fw)).astype(np.float32),
        distinct_maps(rng, (n, K, fh, fw)),
        rng.uniform(0, 1, (n, 2, fh, fw)).astype(np.float32),
    ]


@pytest.mark.parametrize("snap", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_centernet_graph_matches_host_on_random_outputs(snap: bool, seed: int) -> None:
    codec = make_codec(snap)
    outs = random_outputs(codec, n=2, seed=seed)
    host = codec.decode(outs)
    assert_same(host, torch_decode(CenterNetDecode(codec).eval(), *outs))
    if snap:  # the snapping path is exercised: some joints moved, some kept their regression
        moved = np.abs(host[0] - make_codec(False).decode(outs)[0])[..., 0] > 1e-6
        assert moved.any() and not moved.all()


@pytest.mark.parametrize("snap", [True, False])
def test_centernet_graph_matches_host_on_encoded_targets(snap: bool) -> None:
    codec = make_codec(snap)
    rng = np.random.default_rng(3)
    boxes = np.array([[2, 4, 30, 40], [34, 10, 60, 58], [10, 40, 28, 62]], dtype=np.float64)
    u = rng.uniform(0, 1, (3, K, 2))
    kpts = np.concatenate([boxes[:, None, :2] + u * (boxes[:, None, 2:] - boxes[:, None, :2]),
                           rng.integers(0, 3, (3, K, 1))], 2)
    t = codec.encode(kpts, boxes)
    outs = [logit(t[name]) if name.endswith("heatmap") else t[name] for name in OUTPUT_NAMES]
    host = codec.decode(outs)  # many tied background values: both sides take the lower index first
    assert (host[1][0] > 0.5).sum() == 3
    assert_same(host, torch_decode(CenterNetDecode(codec).eval(), *outs))


def test_centernet_ties_resolve_to_lower_index() -> None:
    codec = make_codec(True)
    outs = random_outputs(codec, n=1, seed=4)
    outs[0][:] = 0.0  # every cell is a tied peak
    host = codec.decode(outs)
    centres = (host[2][0, :, :2] + host[2][0, :, 2:]) / 2 / codec.stride
    np.testing.assert_array_equal(np.floor(centres[:, 1]), 0)  # first row, left to right
    np.testing.assert_array_equal(np.floor(centres[:, 0]), np.arange(8))
    assert_same(host, torch_decode(CenterNetDecode(codec).eval(), *outs))


def test_centernet_snap_distance_floor_for_tiny_boxes() -> None:
    """A 1x1-cell person: 0.3 * box size is below 1 feature px, so the 1-px floor decides the snap."""
    codec = make_codec(True)
    fw, fh = codec.feature_size
    outs = [np.zeros((1, c, fh, fw), np.float32) for c in codec.channels.values()]
    outs[0][:] = -8.0
    outs[0][0, 0, 5, 6] = 8.0  # one person centred in cell (6, 5)
    outs[1][0, :, 5, 6] = 0.5
    outs[2][0, :, 5, 6] = 1.0  # box [6, 5, 7, 6] in feature px
    outs[3][0, :, 5, 6] = 0.1  # every joint regressed to (6.1, 5.1)
    outs[4][:] = -8.0
    outs[4][0, :, 5, 6] = 8.0  # joint peaks in the same cell ...
    outs[5][0, :, 5, 6] = 0.7  # ... at (6.7, 5.7): 0.85 px from the regression
    host = codec.decode(outs)
    np.testing.assert_allclose(host[0][0, 0, :, :2], np.full((K, 2), [6.7 * 4, 5.7 * 4]), atol=1e-4)
    assert_same(host, torch_decode(CenterNetDecode(codec).eval(), *outs))


def test_centernet_graph_accepts_tuple_dict_and_unbatched() -> None:
    codec = make_codec(True)
    outs = random_outputs(codec, n=1, seed=5)
    decoder = CenterNetDecode(codec).eval()
    tensors = [torch.from_numpy(o) for o in outs]
    with torch.no_grad():
        a = decoder(tuple(tensors))
        b = decoder(dict(zip(OUTPUT_NAMES, tensors)))
        c = decoder(*[t[0] for t in tensors])
    for x, y, z in zip(a, b, c):
        torch.testing.assert_close(x, y)
        torch.testing.assert_close(x, z)
    with pytest.raises(InputError, match="6 outputs"):
        decoder(tuple(tensors[:5]))
    with pytest.raises(InputError, match="kpt_heatmap"):
        decoder(*tensors[:4], torch.zeros(1, K + 1, 16, 16), tensors[5])


class _FakeCenterNet(torch.nn.Module):
    """Maps an image to fixed raw outputs scaled by the image mean (enough to test the wrapper)."""

    def __init__(self, outs: list[np.ndarray]) -> None:
        super().__init__()
        for name, o in zip(OUTPUT_NAMES, outs):
            self.register_buffer(name, torch.from_numpy(o))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = x.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1)
        return tuple(getattr(self, name) * s for name in OUTPUT_NAMES)


def test_decoded_model_wraps_model_and_decoder() -> None:
    codec = make_codec(True)
    outs = random_outputs(codec, n=1, seed=6)
    wrapped = DecodedModel(_FakeCenterNet(outs), CenterNetDecode(codec)).eval()
    with torch.no_grad():
        keypoints, scores, boxes = wrapped(torch.ones(1, 3, 64, 64))
    assert keypoints.shape == (1, 8, K, 3) and scores.shape == (1, 8) and boxes.shape == (1, 8, 4)
    assert_same(codec.decode(outs), (keypoints.numpy(), scores.numpy(), boxes.numpy()))


# --------------------------------------------------------------------------------------------- export
def _onnx_run(module: torch.nn.Module, inputs: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), tuple(torch.from_numpy(a) for a in inputs), f, dynamo=False,
                          opset_version=17, input_names=names, dynamic_axes={n: {0: "batch"} for n in names})
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(names, inputs)))


@pytest.mark.onnxruntime
@pytest.mark.parametrize("method", ["argmax", "dark", "udp"])
def test_heatmap_decode_exports_to_onnx(method: str) -> None:
    codec = HeatmapCodec(method=method)
    rng = np.random.default_rng(7)
    maps = distinct_maps(rng, (2, 17, 64, 48)) if method == "argmax" else gaussian_maps(codec, rng, n=2)[0]
    assert_same((codec.decode(maps),), tuple(_onnx_run(HeatmapDecode(codec), [maps], ["heatmaps"])))


@pytest.mark.onnxruntime
def test_default_model_with_dark_decoder_exports_to_onnx(default_model_heatmaps) -> None:
    """The exported DecodedModel (default model + in-graph DARK) against eager torch, on real crops."""
    from edgepose.codecs import codec_from_dict
    from edgepose.testing import well_conditioned

    model, x, heatmaps = default_model_heatmaps
    wrapped = DecodedModel(model, HeatmapDecode(codec_from_dict(model.edgepose_meta.codec))).eval()
    got = _onnx_run(wrapped, [x], ["input"])[0]
    want = torch_decode(wrapped, x)[0]
    stable = well_conditioned(heatmaps)  # an argmax near-tie may go either way in another runtime
    assert stable.mean() > 0.9
    np.testing.assert_allclose(got[stable], want[stable], atol=TOL, rtol=0)


@pytest.mark.onnxruntime
def test_centernet_decode_exports_to_onnx() -> None:
    codec = make_codec(True)
    outs = random_outputs(codec, n=2, seed=8)
    assert_same(codec.decode(outs), tuple(_onnx_run(CenterNetDecode(codec), outs, list(OUTPUT_NAMES))))


@pytest.mark.onnxruntime
def test_dark_decoder_graph_stays_small() -> None:
    """The decoder's cost on ONNX Runtime is its node count plus its logs (benchmarks/decode_cost.py): keep it
    near the measured 43 nodes and never take the log of a whole map, only of the S x S window and the ring."""
    onnx = pytest.importorskip("onnx")
    codec = HeatmapCodec(method="dark")  # 64 x 48 maps
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(HeatmapDecode(codec).eval(), (torch.rand(1, 17, 64, 48),), f, dynamo=False,
                          opset_version=17, input_names=["heatmaps"])
    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(f.getvalue()))
    nodes = [n for n in model.graph.node if n.op_type != "Constant"]
    assert len(nodes) <= 45
    assert not [n.op_type for n in nodes if n.op_type == "Split"]  # ~0.5 µs per output: MatMuls instead
    sizes = {v.name: int(np.prod([d.dim_value for d in v.type.tensor_type.shape.dim]))
             for v in [*model.graph.value_info, *model.graph.input]}
    logs = [sizes[n.input[0]] for n in nodes if n.op_type == "Log"]
    assert len(logs) == 2 and max(logs) == 17 * 13 * 13  # the window (kernel 11: 13 x 13), then the ring
