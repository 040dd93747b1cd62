"""`edgepose eval --detections`: the COCO protocol with a detector's person boxes instead of the ground truth."""

from __future__ import annotations

import json

import numpy as np

from edgepose.cli import main
from edgepose.data.coco import load_detections
from edgepose.testing import error_line


def _eval(argv, capsys) -> tuple[int, dict | None, str]:
    code = main(["eval", "simplebaseline-mnv2s-edge", "--no-progress", *argv])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 and "--json" in argv else None), out.err.strip()


def test_detected_boxes_replace_the_ground_truth(capsys, shared_data, tmp_path):
    mini = shared_data / "coco-mini"
    data = f"coco:{mini / 'test_coco.json'}:{mini}"
    det_file = mini / "test_coco_det_AP_H_56.json"
    code, gt_stats, _ = _eval(["--data", data, "--json"], capsys)
    assert code == 0 and gt_stats["num_results"] == 12  # one person per labelled ground-truth box
    code, det_stats, _ = _eval(["--data", data, "--json", "--detections", str(det_file)], capsys)
    usable = sum(len(v) for v in load_detections(det_file).values())
    assert code == 0 and det_stats["num_results"] == usable > 100  # one person per detected box
    assert det_stats["AP50"] != gt_stats["AP50"]  # other boxes, other crops, other keypoints
    # a score floor keeps fewer boxes
    code, floor_stats, _ = _eval(["--data", data, "--json", "--detections", str(det_file),
                                  "--det-min-score", "0.5"], capsys)
    kept = sum(len(v) for v in load_detections(det_file, min_score=0.5).values())
    assert code == 0 and floor_stats["num_results"] == kept < usable
    # a detector's empty or off-image box is dropped, not an error
    dets = json.loads(det_file.read_text())
    dets += [dict(dets[0], bbox=[10.0, 10.0, 0.0, 0.0]), dict(dets[0], bbox=[9000.0, 9000.0, 50.0, 50.0])]
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(dets))
    code, odd_stats, _ = _eval(["--data", data, "--json", "--detections", str(odd)], capsys)
    assert code == 0 and odd_stats["num_results"] == usable
    assert np.isclose(odd_stats["AP"], det_stats["AP"])


def test_bad_detections_are_one_line_errors(capsys, shared_data, tmp_path):
    det_file = shared_data / "coco-mini" / "test_coco_det_AP_H_56.json"
    code, _, err = _eval(["--data", "synthetic-val:2", "--detections", str(det_file)], capsys)
    assert code == 2 and "no person box" in error_line(err) and "synthetic-val:2" in err
    code, _, err = _eval(["--data", "synthetic-val:2", "--detections", str(tmp_path / "none.json")], capsys)
    assert code != 0 and "none.json" in error_line(err)
    code, _, err = _eval(["--data", "synthetic-val:2", "--detections", str(det_file), "--det-min-score", "2"],
                         capsys)
    assert code == 2 and "--det-min-score must be in [0, 1], got 2.0" in error_line(err)
    code, _, err = _eval(["--data", "synthetic-val:2", "--det-min-score", "0.5"], capsys)
    assert code == 2 and "without --detections" in error_line(err)
    for entry in ({"image_id": 1, "bbox": [1, 2, 3, 4], "score": "high"}, {"image_id": "x", "bbox": [1, 2, 3, 4],
                  "score": 0.5}, {"image_id": 1, "bbox": [1, 2, 3, float("nan")], "score": 0.5},
                  {"image_id": 1.7, "bbox": [1, 2, 3, 4], "score": 0.5}, {"image_id": 1e999, "bbox": [1, 2, 3, 4],
                                                                          "score": 0.5}):
        (tmp_path / "bad.json").write_text(json.dumps([entry]))
        code, _, err = _eval(["--data", "synthetic-val:2", "--detections", str(tmp_path / "bad.json")], capsys)
        assert code != 0 and "entry 0 needs an integer image_id" in error_line(err)
    code = main(["eval", "centernet-mnv2s", "--data", "synthetic-val:2", "--detections", str(det_file)])
    assert code == 2 and "--detections needs a top-down model" in error_line(capsys.readouterr().err)
