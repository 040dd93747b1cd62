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
