"""``edgepose demo`` end to end on one target (the full run is `make demo`): report, table, images."""

from __future__ import annotations

import json

import pytest

from edgepose.cli import main


@pytest.mark.slow
@pytest.mark.onnxruntime
def test_demo_small(tmp_path, capsys, shared_data):
    out = tmp_path / "demo-report"
    code = main(["demo", "--out", str(out), "--targets", "onnx", "--precisions", "fp32,int8", "--val-images", "8",
                 "--runs", "5", "--calib", "synthetic:16", "--real-models", "movenet-lightning",
                 "--shared", str(shared_data.parent)])
    printed = capsys.readouterr().out
    assert code == 0
    assert {"bench.json", "bench.md", "bench.html"} <= {p.name for p in out.iterdir()}
    doc = json.loads((out / "bench.json").read_text())
    summary = next(s for s in doc["sections"] if s["title"].startswith("Summary"))
    keys = {(r[0], r[1], r[2]) for r in summary["rows"]}
    for model in ("simplebaseline-mnv2s-edge", "centernet-mnv2s", "movenet-lightning"):
        assert {(model, "pytorch", "fp32"), (model, "onnx", "fp32"), (model, "onnx", "int8")} <= keys
    roles = [r["role"] for r in doc["results"]]
    assert roles.count("baseline") == 3 and roles.count("foreign") == 1  # PyTorch per model, Google's MoveNet
    port = next(r for r in summary["rows"] if r[:3] == ["movenet-lightning", "onnx", "fp32"])
    assert float(port[3].split()[0]) > 65  # the real model on the real photos (AP 71.3), with its interval
    assert "(" in port[3]
    for r in summary["rows"]:
        if r[1] == "onnx" and r[7].startswith("ok"):
            assert float(r[5]) > 0 and r[6].endswith("x")  # latency and speed-up over PyTorch
            assert "verify passed" in r[7]  # every bundle's golden samples, checked where it was exported
    images = next(s for s in doc["sections"] if "photos" in s["title"])["images"]
    assert any(im["file"].startswith("images/movenet-lightning") for im in images)
    assert len(images) >= 8 and all((out / im["file"]).stat().st_size > 10_000 for im in images)
    assert "speed-up" in printed and "simplebaseline-mnv2s-edge" in printed


def test_demo_bad_args(capsys, tmp_path):
    assert main(["demo", "--precisions", "int4", "--out", str(tmp_path / "d")]) != 0
    assert "--precisions" in capsys.readouterr().err
    assert main(["demo", "--runs", "0", "--out", str(tmp_path / "d")]) != 0
    assert main(["demo", "--targets", "onnxx", "--out", str(tmp_path / "d")]) != 0
    assert not (tmp_path / "d").exists()


def test_googles_int8_is_timed_right_after_our_bundle_of_it(tmp_path, monkeypatch):
    """The foreign MoveNet INT8 is benched next to our Lightning TFLite INT8, not at the end of the run."""
    import edgepose.profiling.runner as runner
    from edgepose.demo.run import PEER_OF_MOVENET, DemoConfig, Row, bench_all

    seen = []
    monkeypatch.setattr(runner, "run_bench", lambda jobs, **kw: seen.extend(jobs) or {"results": []})
    rows = [Row(m, t, p, ap=50.0, bundle=tmp_path / f"{m}-{t}-{p}")
            for m in ("movenet-lightning", "movenet-multipose") for t in ("onnx", "tflite") for p in ("fp32", "int8")]
    cfg = DemoConfig(out=tmp_path, log=lambda *a: None)
    bench_all(cfg, rows, {"movenet-lightning": 71.3, "movenet-multipose": 45.6}, tmp_path / "google")
    bundles = [j["bundle"] for j in seen]
    at = bundles.index(str(tmp_path / "google"))
    assert bundles[at - 1] == str(tmp_path / "-".join(PEER_OF_MOVENET)) and at < len(bundles) - 1
    bench_all(cfg, rows[4:], {"movenet-multipose": 45.6}, tmp_path / "google")  # no peer: last
    assert seen[-1]["bundle"] == str(tmp_path / "google")
