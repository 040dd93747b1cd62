"""Several calibration / validation sources (folders of videos, lists), frames spread evenly across videos, and
the label-free accuracy gate: the fp32 model's own predictions on unlabelled real video as ground truth."""

from __future__ import annotations

import json
import shutil
import warnings

import cv2
import numpy as np
import pytest

import edgepose
from edgepose.calibration.dataset import CalibrationSet
from edgepose.calibration.frames import MultiReader, fair_shares, open_source, spread, stream_seed
from edgepose.calibration.label_free import check_val, label_free_gate
from edgepose.cli import main
from edgepose.errors import DataError
from edgepose.models import create
from edgepose.pipeline.preprocess import InputSpec
from edgepose.runtimes.spec import ModelSpec
from edgepose.testing import error_line

TOPDOWN, BOTTOMUP = "simplebaseline-mnv2s-edge", "centernet-mnv2s"
SPEC = ModelSpec(kind="heatmap", input=InputSpec(size=(48, 64)))

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def videos(shared_data):
    folder = shared_data / "real-video"  # the two quickest to decode; one has two to three people, one many
    return [str(folder / "pose2sim-multiperson-cam01.mp4"), str(folder / "opencv-vtest.avi")]


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    """fp32 ONNX Runtime bundles of the two default models (the test compares them with PyTorch itself)."""
    root = tmp_path_factory.mktemp("fp32")
    return {name: edgepose.export(create(name, weights="default"), target="onnx", out=root / name, log=None,
                                  parity=False) for name in (TOPDOWN, BOTTOMUP)}


def _write_video(path, values, size=(64, 48)) -> None:
    """An MJPG clip whose frame i is the flat grey ``values[i]`` (so a decoded frame tells its number)."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for v in values:
        out.write(np.full((size[1], size[0], 3), v, np.uint8))
    out.release()


def _frame_numbers(reader, size: int, seed: int) -> dict:
    """{stream label: [frame numbers read]} for what ``reader`` gives, from the grey level of each frame."""
    got: dict = {}
    for (stream, _), load in reader.candidates(size, seed):
        frame = load()
        got.setdefault(reader.streams[stream].label, []).append(int(round(frame.image.mean() / 4)))
    return got


# ---- sampling ------------------------------------------------------------------------------------
def test_frames_are_shared_and_spread_evenly_across_videos(tmp_path):
    assert fair_shares([40, 10, 5], 20) == [8, 7, 5] and fair_shares([3, 100], 10) == [3, 7]
    assert fair_shares([2, 2], 10) == [2, 2] and spread(100, 4, 0.5) == [12, 37, 62, 87]
    assert spread(5, 8, 0.3) == [0, 1, 2, 3, 4]
    lengths = {"a.avi": 40, "b.avi": 10, "c.avi": 5}
    for name, n in lengths.items():
        _write_video(tmp_path / name, [4 * i for i in range(n)])
    (tmp_path / "notes.txt").write_text("not a video")

    reader = open_source(tmp_path, "heatmap", size=20)
    assert isinstance(reader, MultiReader) and reader.shares(20) == [8, 7, 5]
    picked = _frame_numbers(reader, 20, seed=0)
    counts = {k.rsplit("/", 1)[-1]: len(v) for k, v in picked.items()}
    assert counts == {"a.avi": 8, "b.avi": 7, "c.avi": 5}
    a = picked[str(tmp_path / "a.avi")]
    assert a == reader.streams[0].picks(8, stream_seed(0, 0))  # decoded frames are the planned ones
    assert a[0] < 5 and a[-1] >= 35 and all(4 <= d <= 6 for d in np.diff(a))  # one per fifth of 40: whole length
    assert picked[str(tmp_path / "c.avi")] == [0, 1, 2, 3, 4]
    again = _frame_numbers(open_source(tmp_path, "heatmap", size=20), 20, seed=0)
    other = _frame_numbers(open_source(tmp_path, "heatmap", size=20), 20, seed=5)
    assert again == picked and other[str(tmp_path / "a.avi")] != a

    calib = CalibrationSet.from_source(tmp_path, SPEC, size=20, progress=False)
    d = calib.describe()
    assert [p["samples"] for p in d["sources"]] == [8, 7, 5] and d["skipped_reasons"] == {"unsupported file type": 1}
    assert CalibrationSet.from_source(tmp_path, SPEC, size=20, progress=False).digest == calib.digest


def test_real_videos_as_a_folder_and_as_a_list(shared_data, videos):
    folder = shared_data / "real-video"
    every = CalibrationSet.from_source(folder, SPEC, size=10, progress=False)  # 10 clips, one frame each
    parts = every.describe()["sources"]
    assert len(every) == 10 and len(parts) == 10 and all(p["samples"] == 1 for p in parts)
    assert sum(p["available"] for p in parts) > 1800
    pair = CalibrationSet.from_source(videos, SPEC, size=8, progress=False)
    d = pair.describe()
    assert d["source"] == ", ".join(videos) and pair.sources == videos
    assert [(p["source"], p["samples"]) for p in d["sources"]] == [(videos[0], 4), (videos[1], 4)]
    one = CalibrationSet.from_source(videos[1:], SPEC, size=4, progress=False)  # a one-item list: as before
    assert "sources" not in one.describe() and one.source == videos[1]


@pytest.mark.parametrize("case, match", [
    ("empty", "no usable samples"),
    ("notes.txt", "unsupported type '.txt'"),
    ("clip.mp4", "cannot open video"),
    ("missing.mp4", "not found"),
])
def test_bad_sources_are_one_line_data_errors(tmp_path, videos, case, match):
    bad = tmp_path / case
    if case == "empty":
        bad.mkdir()
    elif case != "missing.mp4":
        bad.write_bytes(b"\x00" * 64)
    for source, want in ((bad, match), ([videos[0], bad], "holds no images or videos" if case == "empty" else match)):
        with pytest.raises(DataError, match=want) as err:
            CalibrationSet.from_source(source, SPEC, size=4, progress=False)
        assert str(bad) in str(err.value) and "\n" not in str(err.value)
    val_match = "holds no images or videos" if case == "empty" else match
    with pytest.raises(DataError, match=val_match) as err:
        check_val(str(bad))
    assert str(bad) in str(err.value) and "expected" in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_bad_val_before_any_work(tmp_path, capsys, videos):
    out = tmp_path / "out"
    args = ["export", "--model", TOPDOWN, "--target", "onnx", "--precision", "int8", "--calib", "synthetic:8"]
    assert main([*args, "--val", str(tmp_path / "nope.mp4"), "--out", str(out)]) != 0
    assert "not found" in error_line(capsys.readouterr().err)
    assert main([*args, "--val", videos[0], "synthetic-val:5", "--out", str(out)]) != 0
    assert "not a mix" in error_line(capsys.readouterr().err)
    assert main([*args, "--val", "synthetic-val:5", "--val-size", "5", "--out", str(out)]) != 0
    assert "only with unlabelled frames" in error_line(capsys.readouterr().err)
    assert not out.exists()


# ---- the label-free gate -------------------------------------------------------------------------
def test_label_free_gate_passes_the_reference_itself(fp32, videos, tmp_path):
    from edgepose.export.onnx import wrap_for_export
    from edgepose.runtimes.torch import TorchRuntime

    for name, frames in ((TOPDOWN, 8), (BOTTOMUP, 6)):
        ref = edgepose.load(fp32[name].path)
        ws = tmp_path / name
        gate = label_free_gate(ref, videos, workspace=ws, size=frames, log=None, progress=False)
        assert gate.reference_stats["AP"] == 1.0 and gate.num_images == frames and gate.pseudo["people"] > 0
        with edgepose.load(fp32[name].path) as same:  # a second fp32 ONNX Runtime copy: identical numbers
            report = gate.check(same)
        assert report.passed and report.ap_drop == 0.0 and report.interval == (0.0, 0.0)
        assert report.extra["keypoint_error_px_p99"] == 0.0 and report.extra["gate"] == "label-free"
        assert report.ap_reference == 100.0 and "by construction" in report.extra["reference_note"]
    spec = ModelSpec.from_dict(fp32[BOTTOMUP].manifest["spec"])
    eager = TorchRuntime(wrap_for_export(create(BOTTOMUP, weights="default").eval(), spec.decode), spec).load()
    report = gate.check(eager)  # PyTorch eager: the same model, other kernels (bottom-up: people matched)
    assert report.passed and abs(report.ap_drop) < 1e-9 and report.extra["keypoint_error_px_p99"] < 0.01


def test_a_person_found_twice_is_one_ignored_label():
    """Bottom-up duplicates would let COCOeval match the reference to the wrong copy (AP 99.9, not 100)."""
    from edgepose.calibration.label_free import _annotation, _mark_duplicates
    from edgepose.keypoints import get_schema

    sigmas = np.asarray(get_schema("coco").sigmas)
    kps = np.column_stack([np.linspace(100, 160, 17), np.linspace(50, 250, 17), np.full(17, 0.9)])
    twin = kps + [1.5, -1.0, 0.0]
    other = kps + [400.0, 0.0, 0.0]
    people = [(_annotation(k, np.array([k[:, 0].min(), k[:, 1].min(), k[:, 0].max(), k[:, 1].max()]), 1), k)
              for k in (kps, twin, other)]
    anns = _mark_duplicates(people, sigmas)
    assert [a["iscrowd"] for a in anns] == [0, 1, 0]
    assert anns[0]["num_keypoints"] == 17 and anns[0]["keypoints"][2] == 2


def _break_first_conv(bundle_dir, out):
    """Copy an INT8 QDQ bundle, multiply the weight scale of its first Conv by 50, re-hash the manifest."""
    import onnx
    from onnx import numpy_helper

    from edgepose.bundle import read_bundle, write_manifest

    shutil.copytree(bundle_dir, out)
    model = onnx.load(str(out / "model.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    made = {o: n for n in model.graph.node for o in n.output}
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and made.get(n.input[1]) is not None
                and made[n.input[1]].op_type == "DequantizeLinear" and made[n.input[1]].input[0] in inits)
    scale = inits[made[conv.input[1]].input[1]]
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(50), scale.name))
    onnx.save(model, str(out / "model.onnx"))
    manifest = read_bundle(bundle_dir).manifest
    write_manifest(out, {k: v for k, v in manifest.items() if k != "files"})
    return conv.name


@pytest.fixture(scope="module")
def int8_cli(tmp_path_factory, videos):
    """An INT8 ONNX Runtime bundle of the top-down model, calibrated on two real videos and gated label-free on
    them (through the command line; written even when the gate fails)."""
    out = tmp_path_factory.mktemp("int8") / "bundle"
    code = main(["export", "--model", TOPDOWN, "--target", "onnx", "--precision", "int8", "--calib", videos[0],
                 "--calib", videos[1], "--calib-size", "16", "--val", *videos, "--val-size", "8",
                 "--allow-accuracy-drop", "--out", str(out)])
    assert code == 0
    return out


def test_cli_records_the_label_free_gate(int8_cli, videos, capsys):
    m = json.loads((int8_cli / "manifest.json").read_text())
    acc, cal = m["accuracy"], m["quantization"]["calibration"]
    assert acc["gate"] == "label-free" and acc["ap_reference"] == 100.0 and acc["num_images"] == 8
    assert acc["pseudo_labels"]["frames"] == 8 and acc["val"] == ", ".join(videos)
    assert acc["keypoint_error_px_p50"] <= acc["keypoint_error_px_p90"] <= acc["keypoint_error_px_p99"]
    assert any("also calibration sources" in n for n in acc["notes"])  # same clips, other frames: said so
    assert [p["samples"] for p in cal["sources"]] == [8, 8] and cal["size"] == 16
    capsys.readouterr()
    assert main(["info", str(int8_cli)]) == 0
    out = capsys.readouterr().out
    assert "accuracy gate (label-free)" in out and "on its own predictions" in out
    assert f"p50 {acc['keypoint_error_px_p50']} px" in out and "100 against them by construction" in out


def test_label_free_gate_fails_a_broken_int8_bundle(int8_cli, fp32, videos, tmp_path):
    broken = tmp_path / "broken"
    conv = _break_first_conv(int8_cli, broken)
    gate = label_free_gate(edgepose.load(fp32[TOPDOWN].path), videos, workspace=tmp_path / "ws", size=8,
                           max_ap_drop=1.0, log=None, progress=False)
    with edgepose.load(int8_cli) as rt:
        plain = gate.check(rt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with edgepose.load(broken) as rt:
            report = gate.check(rt)
    print(f"\nfirst conv {conv}: INT8 {plain.summary()}\nbroken: {report.summary()}")
    assert not report.passed and report.ap_drop > gate.max_ap_drop and report.interval[0] > gate.max_ap_drop
    assert report.ap_drop > plain.ap_drop
    assert report.extra["keypoint_error_px_p50"] > 5 * plain.extra["keypoint_error_px_p50"]
    assert report.noise_note() is None or "lies below" not in report.noise_note()
