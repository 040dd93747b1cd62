"""MoveNet codecs (Google's post-processing): the numpy decode against Google's own graphs on real frames, the
constants against the graphs', the torch decoders against numpy (eager and exported to ONNX), input checks.

Measured (4 real frames per model, 192² / 256², and MultiPose at 320 x 256): numpy vs Google's graph <= 2.3e-5
input px, scores <= 1.2e-7; torch eager and the exported decoder in ONNX Runtime vs numpy <= 1.2e-7 px.
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest

from edgepose.codecs import MoveNetCodec, MoveNetMultiPoseCodec, codec_from_dict, get_codec
from edgepose.codecs.movenet import (
    KPT_DIST_OFFSET,
    KPT_SCORE_THRESHOLD,
    PEAK_POOL,
    PEAK_TOLERANCE,
    SPREAD,
    centre_weight,
)
from edgepose.errors import ConfigError, InputError, UnknownNameError
from tests.codecs.movenet_reference import MODELS, Reference, real_frames

TOL = 1e-3  # input px
SCORE_TOL = 1e-5
CASES = [("movenet-lightning", (192, 192)), ("movenet-thunder", (256, 256)), ("movenet-multipose", (256, 256)),
         ("movenet-multipose", (320, 256))]
CASE_IDS = [f"{name}-{w}x{h}" for name, (w, h) in CASES]


def make_codec(name: str, size: tuple[int, int]) -> MoveNetCodec | MoveNetMultiPoseCodec:
    return MoveNetMultiPoseCodec(size) if name.endswith("multipose") else MoveNetCodec(size)


def as_tuple(out) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(o) for o in out) if isinstance(out, (tuple, list)) else (np.asarray(out),)


def assert_close(host: tuple[np.ndarray, ...], other: tuple[np.ndarray, ...]) -> None:
    """keypoints (..., 3): x, y to TOL px, score to SCORE_TOL; multipose scores to SCORE_TOL, boxes to TOL px."""
    assert len(host) == len(other)
    for i, (h, o) in enumerate(zip(host, other)):
        assert h.shape == o.shape, (i, h.shape, o.shape)
        if i == 0:
            np.testing.assert_allclose(o[..., :2], h[..., :2], atol=TOL, rtol=0)
            np.testing.assert_allclose(o[..., 2], h[..., 2], atol=SCORE_TOL, rtol=0)
        else:
            np.testing.assert_allclose(o, h, atol=SCORE_TOL if i == 1 else TOL, rtol=0)


@pytest.fixture(scope="module")
def google() -> dict[str, Reference]:
    """One ONNX Runtime session per Google graph, raw heads exposed (loaded once for the module)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    return {name: Reference(name) for name in MODELS}


@pytest.fixture(scope="module")
def real_runs(google, shared_data) -> dict[str, tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]]:
    """case id → (raw maps, Google's output in input px), each batched over 2 coco-mini photos + 2 video frames."""
    runs = {}
    for case, (name, size) in zip(CASE_IDS, CASES):
        pairs = [google[name].run(rgb) for rgb in real_frames(size)]
        maps = tuple(np.concatenate(m) for m in zip(*(p[0] for p in pairs)))
        runs[case] = maps, tuple(np.concatenate(o) for o in zip(*(p[1] for p in pairs)))
    return runs


def random_maps(codec, n: int, seed: int) -> list[np.ndarray]:
    """Raw maps with continuous random values: logits N(0, 3), regressions within 8 cells, offsets within 1 cell,
    box sizes up to half the map (some negative: clamped to 0)."""
    rng = np.random.default_rng(seed)
    fw, fh = codec.feature_size
    ranges = {"box_scale": (-2.0, fh / 2), "kpt_regress": (-8.0, 8.0)}
    maps = []
    for name, c in codec.channels.items():
        shape = (n, c, fh, fw)
        if name in ("centre", "kpt_heatmap"):
            maps.append(rng.normal(0.0, 3.0, shape).astype(np.float32))
        else:
            lo, hi = ranges.get(name, (-1.0, 1.0))
            maps.append(rng.uniform(lo, hi, shape).astype(np.float32))
    return maps


def few_peak_maps(codec: MoveNetMultiPoseCodec) -> list[np.ndarray]:
    """Image 0: one smooth centre blob (one 5 x 5 peak; the other slots tie at 0 and go to the lowest cells);
    image 1: negative box sizes everywhere (empty boxes: every weighted map is 0, the joint goes to cell 0)."""
    maps = random_maps(codec, 2, seed=11)
    fw, fh = codec.feature_size
    ys, xs = np.mgrid[0:fh, 0:fw]
    d2 = (ys - 20.3) ** 2 + (xs - 30.7) ** 2
    maps[0][0, 0] = 2.0 * np.exp(-d2 / 72.0) - 4.0 - 0.05 * np.sqrt(d2)  # falls away from the blob everywhere
    maps[1][1] = -np.abs(maps[1][1]) - 0.1
    return maps


# ---------------------------------------------------------------------------------- against Google's graphs
@pytest.mark.parametrize("case", CASE_IDS)
def test_numpy_decode_reproduces_googles_output(case, real_runs) -> None:
    name, size = CASES[CASE_IDS.index(case)]
    maps, theirs = real_runs[case]
    mine = as_tuple(make_codec(name, size).decode(maps))
    assert_close(theirs, mine)
    if name.endswith("multipose"):  # real people were found, so the comparison means something
        assert theirs[1].max(axis=1).min() > 0.2
    else:
        assert np.median(theirs[0][..., 2]) > 0.2


@pytest.mark.parametrize("name", list(MODELS))
def test_constants_are_the_graphs(name, google) -> None:
    consts, attrs = google[name].constants, google[name].node_attrs
    size = MODELS[name][0]
    if name.endswith("multipose"):
        assert float(consts["StatefulPartitionedCall/mul_6/y:0"]) == SPREAD
        assert float(consts["StatefulPartitionedCall/Less/y:0"]) == np.float32(PEAK_TOLERANCE)
        assert float(consts["StatefulPartitionedCall/Greater_1/y:0"]) == KPT_SCORE_THRESHOLD
        assert attrs["StatefulPartitionedCall/MaxPool"]["kernel_shape"] == [PEAK_POOL, PEAK_POOL]
        return
    codec = MoveNetCodec((size, size))
    assert float(consts["StatefulPartitionedCall/add_5/y:0"]) == KPT_DIST_OFFSET
    np.testing.assert_array_equal(consts["StatefulPartitionedCall/Reshape_13:0"].ravel(), codec.scale)
    table = consts["ConstantFolding/StatefulPartitionedCall/truediv_2_recip:0"][..., 0]
    mine = centre_weight(size // 4, size // 4)
    differ = mine != table  # Lightning: none; Thunder: 8 corner cells one float16 step apart (module docstring)
    assert differ.sum() == (8 if name.endswith("thunder") else 0)
    np.testing.assert_allclose(mine, table, rtol=6e-4, atol=0)


# ---------------------------------------------------------------------------------- torch against numpy
def torch_decode(codec, maps: list[np.ndarray] | tuple[np.ndarray, ...], packed: bool = False) -> tuple:
    torch = pytest.importorskip("torch")
    from edgepose.codecs.graph_movenet import MoveNetDecode, MoveNetMultiPoseDecode

    decoder = (MoveNetMultiPoseDecode if isinstance(codec, MoveNetMultiPoseCodec) else MoveNetDecode)(codec).eval()
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(m)) for m in maps)
    with torch.no_grad():
        out = decoder(tensors) if packed else decoder(*tensors)
    return tuple(o.numpy() for o in (out if isinstance(out, tuple) else (out,)))


@pytest.mark.parametrize("case", CASE_IDS)
def test_torch_decoder_matches_numpy_on_real_maps(case, real_runs) -> None:
    codec = make_codec(*CASES[CASE_IDS.index(case)])
    maps = real_runs[case][0]
    assert_close(as_tuple(codec.decode(maps)), torch_decode(codec, maps, packed=True))


@pytest.mark.parametrize("size", [(192, 192), (160, 128)])
def test_torch_decoder_matches_numpy_on_random_single_pose_maps(size) -> None:
    codec = MoveNetCodec(size)
    maps = random_maps(codec, 3, seed=size[0])
    assert_close(as_tuple(codec.decode(maps)), torch_decode(codec, maps))


@pytest.mark.parametrize("size", [(256, 256), (192, 256)])
def test_torch_decoder_matches_numpy_on_random_multipose_maps(size) -> None:
    codec = MoveNetMultiPoseCodec(size)
    for maps in (random_maps(codec, 2, seed=size[0]), few_peak_maps(codec)):
        assert_close(as_tuple(codec.decode(maps)), torch_decode(codec, maps))


def test_few_peaks_and_empty_boxes() -> None:
    codec = MoveNetMultiPoseCodec()
    keypoints, scores, boxes = codec.decode(few_peak_maps(codec))
    assert scores[0, 0] > 0 and (scores[0, 1:] == 0).all()  # the slots without a peak score 0
    np.testing.assert_array_equal(boxes[1, :, 2:] - boxes[1, :, :2], 0)  # empty boxes
    assert (keypoints[1, ..., 2] == 0).all() and (scores[1] == 0).all()


# ---------------------------------------------------------------------------------- ONNX export
def onnx_decode(codec, maps: list[np.ndarray] | tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Export the torch decoder (legacy exporter, opset 17, batch 1 traced, batch axis dynamic) and run it in ORT."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from edgepose.codecs.graph_movenet import MoveNetDecode, MoveNetMultiPoseDecode

    multi = isinstance(codec, MoveNetMultiPoseCodec)
    decoder = (MoveNetMultiPoseDecode if multi else MoveNetDecode)(codec).eval()
    names = list(codec.output_names)
    outs = ["keypoints", "scores", "boxes"] if multi else ["keypoints"]
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(decoder, tuple(torch.from_numpy(np.ascontiguousarray(m[:1])) for m in maps), f,
                          dynamo=False, opset_version=17, input_names=names, output_names=outs,
                          dynamic_axes={n: {0: "batch"} for n in names + outs})
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    return tuple(session.run(None, {n: np.ascontiguousarray(m) for n, m in zip(names, maps)}))


@pytest.mark.parametrize("name, size", [("movenet-lightning", (192, 192)), ("movenet-multipose", (256, 256))])
def test_exported_decoder_matches_numpy(name, size, real_runs) -> None:
    codec = make_codec(name, size)
    maps = real_runs[CASE_IDS[CASES.index((name, size))]][0]
    extra = few_peak_maps(codec) if name.endswith("multipose") else random_maps(codec, 2, seed=5)
    batch = [np.concatenate([a, b]) for a, b in zip(maps, extra)]
    assert_close(as_tuple(codec.decode(batch)), onnx_decode(codec, batch))


# ---------------------------------------------------------------------------------- input checks, params
@pytest.mark.parametrize("which", ["numpy", "torch"])
def test_bad_input_is_a_one_line_input_error(which) -> None:
    def decode(codec, maps):
        return codec.decode(maps) if which == "numpy" else torch_decode(codec, maps)

    single, multi = MoveNetCodec(), MoveNetMultiPoseCodec()
    maps = random_maps(single, 1, seed=0)
    wrong_channels = [maps[0], maps[1][:, :33], *maps[2:]]
    thunder_maps = random_maps(MoveNetCodec((256, 256)), 1, seed=0)
    for codec, bad, got, want in [
        (single, wrong_channels, "(1, 33, 48, 48)", "(N, 34, 48, 48)"),
        (single, thunder_maps, "(1, 1, 64, 64)", "(N, 1, 48, 48)"),
        (multi, random_maps(multi, 1, seed=0)[:5] + [maps[3][:, :, :, :40]], "(1, 34, 48, 40)", "(N, 34, 64, 64)"),
        (single, random_maps(multi, 1, seed=0), "6", "4 outputs"),
    ]:
        with pytest.raises(InputError) as err:
            decode(codec, bad)
        message = str(err.value)
        assert "\n" not in message and got in message and want in message, message


def test_registry_and_params() -> None:
    single = get_codec("movenet", input_size=(256, 256))
    multi = get_codec("movenet-multipose", input_size=[320, 256], max_people=4)
    assert isinstance(single, MoveNetCodec) and isinstance(multi, MoveNetMultiPoseCodec)
    for codec in (single, multi):
        params = json.loads(json.dumps(codec.to_dict()))
        assert codec_from_dict(params).to_dict() == codec.to_dict()
    assert multi.to_dict() == {"kind": "movenet-multipose", "input_size": [320, 256], "stride": 4,
                               "num_keypoints": 17, "max_people": 4}
    assert multi.feature_size == (80, 64) and single.scale.tolist() == [1 / 64, 1 / 64]
    with pytest.raises(UnknownNameError, match="movenet-multipose"):
        get_codec("movenet-multi")
    with pytest.raises(ConfigError, match="divisible by stride 4"):
        MoveNetCodec((190, 192))
    with pytest.raises(ConfigError, match="max_people must be a positive int"):
        MoveNetMultiPoseCodec(max_people=0)
    with pytest.raises(ConfigError, match="kind 'movenet', expected 'movenet-multipose'"):
        MoveNetMultiPoseCodec.from_dict(single.to_dict())


def test_decoders_refuse_the_other_codec() -> None:
    pytest.importorskip("torch")
    from edgepose.codecs.graph_movenet import MoveNetDecode, MoveNetMultiPoseDecode

    with pytest.raises(ConfigError, match="MoveNetDecode needs a MoveNetCodec, got MoveNetMultiPoseCodec"):
        MoveNetDecode(MoveNetMultiPoseCodec())
    with pytest.raises(ConfigError, match="needs a MoveNetMultiPoseCodec, got MoveNetCodec"):
        MoveNetMultiPoseDecode(MoveNetCodec())
