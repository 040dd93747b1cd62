"""Bad input on the command line: one-line error naming what was received, non-zero exit, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from edgepose.cli import main
from edgepose.testing import error_line as _one_line


def _run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_unknown_model(capsys, tmp_path):
    code, err = _run(["train", "--model", "simplebaseline-r81", "--out", str(tmp_path / "x.pt")], capsys)
    assert code != 0 and "did you mean 'simplebaseline-r18'" in _one_line(err)
    assert not (tmp_path / "x.pt").exists()


def test_unknown_target(capsys, tmp_path):
    code, err = _run(["export", "--model", "simplebaseline-mnv2s-edge", "--target", "openvin",
                      "--out", str(tmp_path / "b")], capsys)
    assert code != 0 and "did you mean 'openvino'" in _one_line(err)
    assert not (tmp_path / "b").exists()


def _coco_copy(shared_data, tmp_path, edit):
    data = json.loads((shared_data / "coco-mini" / "test_coco.json").read_text())
    edit(data)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return f"coco:{path}:{shared_data / 'coco-mini'}"


def test_wrong_keypoint_count(capsys, tmp_path, shared_data):
    def drop_one(d):
        for a in d["annotations"]:
            a["keypoints"] = a["keypoints"][:-3]

    spec = _coco_copy(shared_data, tmp_path, drop_one)
    code, err = _run(["train", "--model", "simplebaseline-mnv2s-edge", "--data", spec, "--epochs", "1",
                      "--out", str(tmp_path / "x.pt")], capsys)
    line = _one_line(err)
    assert code != 0 and "has 16 keypoints; expected 17" in line


def test_missing_image(capsys, tmp_path, shared_data):
    spec = _coco_copy(shared_data, tmp_path, lambda d: d["images"][0].update(file_name="nope.jpg"))
    code, err = _run(["eval", "simplebaseline-mnv2s-edge", "--data", spec, "--no-progress"], capsys)
    assert code != 0 and "nope.jpg" in _one_line(err)


def test_corrupt_json(capsys, tmp_path):
    (tmp_path / "bad.json").write_text('{"images": [')
    code, err = _run(["eval", "simplebaseline-mnv2s-edge", "--data", f"coco:{tmp_path / 'bad.json'}"], capsys)
    assert code != 0 and "bad.json" in _one_line(err)


def test_empty_dataset(capsys, tmp_path):
    (tmp_path / "empty.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    code, err = _run(["train", "--model", "simplebaseline-mnv2s-edge", "--data", f"coco:{tmp_path / 'empty.json'}",
                      "--out", str(tmp_path / "x.pt")], capsys)
    assert code != 0 and "empty.json" in _one_line(err)


def test_non_state_dict_checkpoint(capsys, tmp_path):
    from edgepose.models import create

    torch.save(create("simplebaseline-mnv2s-edge"), tmp_path / "whole.pt")
    code, err = _run(["eval", str(tmp_path / "whole.pt")], capsys)
    assert code != 0 and "state_dict" in _one_line(err)


def test_missing_bundle_for_loading(tmp_path):
    import edgepose
    from edgepose.errors import BundleError

    with pytest.raises(BundleError, match="bundle not found"):
        edgepose.load(tmp_path / "nope")


def test_exit_code_from_a_real_process(tmp_path):
    out = subprocess.run([sys.executable, "-m", "edgepose", "export", "--model", "nope", "--target", "onnx",
                          "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("error: unknown model 'nope'")


def test_bad_output_paths_are_one_line(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = ((afile, "is a file; expected a directory"), (afile / "sub", "afile is a file; expected a path whose"))
    for out, match in cases:
        code, err = _run(["export", "--model", "simplebaseline-mnv2s-edge", "--target", "onnx", "--out", str(out)],
                         capsys)
        assert code != 0 and match in _one_line(err) and "Traceback" not in err
    assert afile.read_text() == "x"


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--runs", "x"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and "invalid int value: 'x'" in err


@pytest.mark.signals
def test_a_second_ctrl_c_interrupts_at_once():
    """stop_requests: the first signal only sets the flag; a second Ctrl-C raises; handlers are restored."""
    import os
    import signal

    from edgepose.utils.signals import stop_requests

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), stop_requests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_mid_export_leaves_nothing(tmp_path):
    """A real SIGTERM during an export: exit 143, no bundle, no partial folder beside --out, no temporary files
    (the handler runs the registered clean-ups and exits: it raises nothing through native code)."""
    import os
    import signal
    import time

    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "edgepose", "export", "--model", "simplebaseline-mnv2s-edge",
                             "--target", "openvino", "--out", str(out / "b")], stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TMPDIR=str(tmp)))
    deadline = time.time() + 120
    def started():  # the ONNX written to a temporary folder: the export is under way, the bundle not yet
        return any(p.name.startswith("edgepose-") for p in tmp.iterdir())

    while time.time() < deadline and not started():
        time.sleep(0.02)
    assert started(), "the export never started writing"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err
    left = [p.name for p in tmp.iterdir() if p.name != ".ses"]  # .ses: OpenVINO's telemetry id, not ours
    assert "terminated" in err and list(out.iterdir()) == [] and left == []


def test_more_bad_inputs_are_one_line(capsys, tmp_path):
    """Inputs a user-side review found crashing with a traceback or silently accepted."""
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    (tmp_path / "intmod.py").write_text("def f():\n    return 3\n")
    (tmp_path / "badmod.py").write_text("def f(:\n")
    exp = ["export", "--target", "onnx", "--out", str(tmp_path / "b")]
    cases = [
        (["eval", str(text)], "is not a readable PyTorch checkpoint"),
        ([*exp, "--model", "simplebaseline-mnv2s-edge", "--weights", str(text)], "not a readable PyTorch checkpoint"),
        ([*exp, "--model", f"{tmp_path / 'intmod.py'}:f", "--head", "heatmap", "--input-size", "96", "128"],
         "f() returned int; expected a torch.nn.Module"),
        ([*exp, "--model", f"{tmp_path / 'badmod.py'}:f"], "failed (line 1): SyntaxError"),
        ([*exp, "--model", "simplebaseline-mnv2s-edge", "--keypoints", "mpii"], "--keypoints given with --model"),
        ([*exp, "--model", "simplebaseline-mnv2s-edge", "--max-ap-drop", "-1"], "expected AP points >= 0"),
        ([*exp, "--model", "simplebaseline-mnv2s-edge", "--precision", "int8", "--calib", "synthetic:8",
          "--val", str(tmp_path / "nope")], "--val '"),
        (["eval", "simplebaseline-mnv2s-edge", "--data", "synthetic-val:0"], "expected at least 1 image"),
        (["train", "--model", "simplebaseline-mnv2s-edge", "--out", str(tmp_path / "x.pt"), "--workers", "-1"],
         "workers must be >= 0"),
        (["train", "--model", "simplebaseline-mnv2s-edge", "--out", str(tmp_path / "x.pt"), "--threads", "0"],
         "threads must be >= 1"),
        (["train", "--model", "simplebaseline-mnv2s-edge", "--out", str(tmp_path)], "is a directory"),
    ]
    for argv, match in cases:
        code, err = _run(argv, capsys)
        assert code != 0 and match in _one_line(err) and "Traceback" not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["badmod.py", "intmod.py", "notes.txt"]


def test_max_images_limits_what_is_generated(capsys, tmp_path, monkeypatch):
    """eval --max-images 3 on synthetic-val:100000 generates 3 images, not 100000 (image i is seeded by i)."""
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path))
    code, _ = _run(["eval", "simplebaseline-mnv2s-edge", "--data", "synthetic-val:100000", "--max-images", "3",
                    "--no-progress"], capsys)
    assert code == 0
    (made,) = (tmp_path / "synthetic").iterdir()
    assert "-n3-" in made.name


_SWAP_CHECK = """
import os, signal
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper
from edgepose.utils.signals import signals_deferred

# native threads the signal can be delivered to: a per-thread signal mask did not hold it back (49 of 50)
graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
so = ort.SessionOptions()
so.intra_op_num_threads = 2
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
session = ort.InferenceSession(model.SerializeToString(), so)
got = []
signal.signal(signal.SIGTERM, lambda signum, frame: got.append("handled"))
for _ in range(200):
    session.run(None, {"x": np.zeros((1, 4), np.float32)})  # its worker thread spins for a while after a run
    with signals_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # time for a handler to run, were the signal not held back
            pass
        got.append("inside")
    for _ in range(10_000):  # Python runs a delivered signal's handler at its next check
        pass
print(sum(got[i:i + 2] != ["inside", "handled"] for i in range(0, len(got), 2)), len(got))
"""


def test_signals_wait_for_the_bundle_swap():
    """Ctrl-C / SIGTERM between the two renames of a bundle swap would leave no bundle: they wait for it (in a
    fresh process with native threads, as an export has)."""
    out = subprocess.run([sys.executable, "-c", _SWAP_CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "400"], out.stdout


def test_native_log_lines_are_held_unless_the_call_fails(capfd):
    import os

    from edgepose.utils.native_stderr import native_stderr_held

    with native_stderr_held():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on\n")
    assert "oneDNN" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), native_stderr_held():
        os.write(2, b"E0000 converter.cc:1] the reason it failed\n")
        raise RuntimeError("conversion failed")
    assert "the reason it failed" in capfd.readouterr().err


def test_eval_and_train_on_odd_coco_files(capsys, tmp_path, shared_data):
    """eval skips ground-truth boxes a crop cannot use (as training does) instead of aborting; a missing image
    stops training before any worker starts; --flip-test on a bottom-up model is refused."""
    def outside(d):
        d["annotations"][0]["bbox"] = [5000.0, 5000.0, 10.0, 10.0]

    data = _coco_copy(shared_data, tmp_path, outside)
    code, err = _run(["eval", "simplebaseline-mnv2s-edge", "--data", data, "--json", "--no-progress"], capsys)
    assert code == 0 and "1 ground-truth box(es) with no area or outside their image skipped" in err
    (tmp_path / "miss").mkdir()

    def missing(d):
        d["images"][0]["file_name"] = "nope.jpg"

    data = _coco_copy(shared_data, tmp_path / "miss", missing)
    code, err = _run(["train", "--model", "simplebaseline-mnv2s-edge", "--data", data, "--epochs", "1",
                      "--out", str(tmp_path / "m.pt")], capsys)
    assert code != 0 and "1 of 4 images" in _one_line(err) and "nope.jpg" in err
    code, err = _run(["eval", "centernet-mnv2s", "--flip-test", "--data", "synthetic-val:2"], capsys)
    assert code != 0 and "--flip-test needs a top-down" in _one_line(err)


def test_eval_synthetic_is_the_training_split(capsys, tmp_path, monkeypatch):
    """--data synthetic:N scores the training set, synthetic-val:N the held-out one (it silently used val)."""
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path))
    for data in ("synthetic:3", "synthetic-val:3"):
        assert _run(["eval", "simplebaseline-mnv2s-edge", "--data", data, "--no-progress"], capsys)[0] == 0
    made = sorted(p.name for p in (tmp_path / "synthetic").iterdir())
    assert [n.split("-n")[0] for n in made] == ["single-train", "single-val"]


def test_a_message_after_a_half_drawn_bar_starts_its_own_line(monkeypatch):
    import io

    from edgepose.utils import progress

    monkeypatch.delenv("EDGEPOSE_NO_PROGRESS", raising=False)

    tty = io.StringIO()
    tty.isatty = lambda: True
    progress.Progress(10, "synthetic", stream=tty).update()
    progress.end_open_line(tty)
    progress.end_open_line(tty)  # once only
    assert tty.getvalue().endswith("\r\n") and not tty.getvalue().endswith("\r\n\n")


def test_progress_in_a_log_stays_short(monkeypatch):
    """Off a terminal a bar prints one line when done for a short job, and every 10 % of a long one."""
    import io

    from edgepose.utils import progress

    monkeypatch.delenv("EDGEPOSE_NO_PROGRESS", raising=False)
    log = io.StringIO()
    bar = progress.Progress(100, "calibration set", stream=log)
    for _ in range(100):
        bar.update()
    assert log.getvalue().splitlines()[-1].startswith("calibration set: [####") and log.getvalue().count("\n") == 1
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    log = io.StringIO()
    bar = progress.Progress(100, "train", stream=log)
    for _ in range(100):
        now[0] += 3.0  # 3 s per item: a long job
        bar.update()
    assert log.getvalue().count("\n") == 10 and "100/100" in log.getvalue().splitlines()[-1]
    bar.close()
    assert log.getvalue().count("\n") == 10  # the last line already showed the end
    log = io.StringIO()
    bar = progress.Progress(100, "frames", stream=log)  # a video shorter than --max-frames
    for _ in range(37):
        bar.update()
    bar.close()
    assert log.getvalue().count("\n") == 1 and "37/100" in log.getvalue()
