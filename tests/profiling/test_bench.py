"""``edgepose bench``: stage times add up, percentiles are ordered, reports are written, bad input fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgepose.cli import main
from edgepose.profiling.bench import bench_frame, bench_job
from edgepose.profiling.runner import parse_threads, plan_jobs
from edgepose.testing import cli_error as _error

STAGES = ("preprocess", "inference", "decode")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """fp32 ONNX bundles of the two default models (exported once for the module)."""
    import edgepose
    from edgepose.models import create

    root = tmp_path_factory.mktemp("bench-bundles")
    out = {}
    for name in ("simplebaseline-mnv2s-edge", "centernet-mnv2s"):
        model = create(name, weights="default")
        out[name] = edgepose.export(model, target="onnx", out=root / name, log=None).path
    return out


def _check_result(r: dict, runs: int) -> None:
    st = r["stages"]
    for stage in (*STAGES, "total"):
        s = st[stage]
        assert len(r["samples_ms"][stage]) == runs
        assert 0 <= s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"], (stage, s)
        assert s["std"] >= 0
    parts = sum(st[s]["mean"] for s in STAGES)
    assert abs(parts - st["total"]["mean"]) <= 0.05 * st["total"]["mean"], (parts, st["total"])
    assert st["inference"]["p50"] > 0 and st["preprocess"]["p50"] > 0
    assert r["fps"] == pytest.approx(1e3 / st["total"]["mean"])
    assert r["peak_rss_mb"] > 10


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", ["simplebaseline-mnv2s-edge", "centernet-mnv2s"])
def test_bench_job_stages_add_up(bundles, name):
    r = bench_job({"kind": "bundle", "bundle": str(bundles[name]), "threads": 1, "runs": 30, "warmup": 3,
                   "batch": 1}, progress=False)
    _check_result(r, 30)
    assert r["target"] == "onnx" and r["backend"] == "onnxruntime" and r["role"] == "bundle"
    assert r["model_size_mb"] > 1


@pytest.mark.onnxruntime
def test_batch_of_crops_and_baseline(bundles):
    path = str(bundles["simplebaseline-mnv2s-edge"])
    r = bench_job({"kind": "bundle", "bundle": path, "threads": 1, "runs": 10, "warmup": 1, "batch": 4},
                  progress=False)
    _check_result(r, 10)
    base = bench_job({"kind": "baseline", "bundle": path, "threads": 1, "runs": 10, "warmup": 1, "batch": 1},
                     progress=False)
    _check_result(base, 10)
    assert base["role"] == "baseline" and base["target"] == "pytorch" and base["backend"] == "torch"
    assert base["note"] == "same weights as the bundle"


def test_bench_frame_shapes():
    frame, boxes = bench_frame("heatmap", batch=3)
    assert frame.shape == (480, 640, 3) and boxes.shape == (3, 4)
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    frame, boxes = bench_frame("centernet")
    assert boxes is None


@pytest.mark.onnxruntime
@pytest.mark.slow
def test_cli_bench_writes_reports(bundles, tmp_path, capsys):
    report = tmp_path / "report"
    code = main(["bench", str(bundles["simplebaseline-mnv2s-edge"]), str(bundles["centernet-mnv2s"]),
                 "--threads", "1,2", "--runs", "20", "--warmup", "2", "--baseline", "torch", "--quiet",
                 "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert {p.name for p in report.iterdir()} >= {"bench.json", "bench.md", "bench.html"}
    doc = json.loads((report / "bench.json").read_text())
    assert doc["schema"] == "edgepose.bench" and doc["schema_version"] == 1
    (device,) = doc["devices"].values()
    assert device["cpu_model"] and device["cores_logical"] >= 1
    roles = [r["role"] for r in doc["results"]]
    assert roles.count("baseline") == 4 and roles.count("bundle") == 4  # 2 models x 2 thread counts each
    for r in doc["results"]:
        _check_result(r, 20)
        assert r["isolated"] is True
    import re

    bundle_rows = [ln for ln in out.splitlines() if "· onnx ·" in ln]
    assert len(bundle_rows) == 4 and all(re.search(r"\d+\.\dx\s*$", ln) for ln in bundle_rows)  # speed-up
    other = json.loads((report / "bench.json").read_text())  # the same run, as if on another device
    for fp in other["devices"].values():
        fp.update(label="Raspberry Pi 5 · 4 cores · aarch64", cpu_model="Cortex-A76")
    (tmp_path / "pi.json").write_text(json.dumps(other))
    merged = tmp_path / "merged"
    code = main(["bench", "--merge", str(report / "bench.json"), str(tmp_path / "pi.json"),
                 "--report", str(merged), "--quiet"])
    assert code == 0
    assert len(json.loads((merged / "bench.json").read_text())["results"]) == 16
    assert "repeats the result" in _error(["bench", "--merge", str(report / "bench.json"), str(report / "bench.json"),
                                           "--report", str(tmp_path / "twice")], capsys)


@pytest.mark.onnxruntime
def test_bad_input(bundles, tmp_path, capsys):
    good = str(bundles["simplebaseline-mnv2s-edge"])
    report = tmp_path / "r"
    assert "bundle not found" in _error(["bench", str(tmp_path / "missing"), "--report", str(report)], capsys)
    assert "--threads" in _error(["bench", good, "--threads", "0", "--report", str(report)], capsys)
    assert "--threads" in _error(["bench", good, "--threads", "two", "--report", str(report)], capsys)
    assert "--runs 0" in _error(["bench", good, "--runs", "0", "--report", str(report)], capsys)
    assert "--batch 2" in _error(["bench", str(bundles["centernet-mnv2s"]), "--batch", "2", "--runs", "1",
                                  "--no-isolate", "--report", str(report)], capsys)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(good, corrupt)
    with open(corrupt / "model.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00garbage\x00")
    assert "sha256" in _error(["bench", str(corrupt), "--report", str(report)], capsys)
    (tmp_path / "manifest-less").mkdir()
    _error(["bench", str(tmp_path / "manifest-less"), "--report", str(report)], capsys)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "edgepose.bench", "schema_version": 99, "results": []}))
    assert "schema version 99" in _error(["bench", "--merge", str(old), "--report", str(report)], capsys)
    assert not report.exists()


def test_parse_threads():
    assert parse_threads("1,2,2,4") == [1, 2, 4]
    with pytest.raises(Exception, match="--threads must be >= 1 .*got -2"):  # the one thread-count rule
        parse_threads("1,-2")
    with pytest.raises(Exception, match="positive integers"):
        parse_threads("1,two")
    with pytest.raises(Exception, match="--runs"):
        plan_jobs(["x"], threads=[1], runs=0, warmup=0, batch=1)


@pytest.mark.onnxruntime
def test_tensorrt_bundle_needs_its_backend_or_backend_override(tmp_path, capsys):
    import edgepose
    from edgepose.models import create
    from edgepose.runtimes import is_available

    b = edgepose.export(create("simplebaseline-mnv2s-edge", weights="default"), target="tensorrt",
                        out=tmp_path / "trt", log=None)
    report = tmp_path / "r"
    if not is_available("tensorrt"):
        line = _error(["bench", str(b.path), "--runs", "2", "--report", str(report)], capsys)
        assert "'tensorrt' is not available" in line and "--backend onnxruntime" in line
    code = main(["bench", str(b.path), "--backend", "onnxruntime", "--runs", "5", "--warmup", "1", "--threads", "1",
                 "--no-isolate", "--quiet", "--report", str(report)])
    assert code == 0
    (r,) = json.loads((report / "bench.json").read_text())["results"]
    assert r["target"] == "tensorrt" and r["backend"] == "onnxruntime"


@pytest.mark.onnxruntime
def test_a_failing_worker_is_one_line_and_the_others_still_run(bundles, tmp_path, capfd, monkeypatch):
    from edgepose.profiling import runner

    good = {"kind": "bundle", "bundle": str(bundles["simplebaseline-mnv2s-edge"]), "threads": 1, "runs": 3,
            "warmup": 1, "batch": 1, "image": None}
    bad = dict(good, bundle=str(tmp_path / "vanished"))  # passed the up-front checks, then disappeared
    doc = runner.run_bench([bad, good], isolate=True, progress=False)
    assert len(doc["results"]) == 1 and len(doc["failures"]) == 1
    assert "bundle not found" in doc["failures"][0]["error"]
    assert "Traceback" not in capfd.readouterr().err
    monkeypatch.setattr(runner, "plan_jobs", lambda *a, **k: [bad, good])
    report = tmp_path / "r"
    line = _error(["bench", good["bundle"], "--report", str(report)], capfd)
    assert "1 of 2 bench runs failed" in line and "bundle not found" in line
    assert len(json.loads((report / "bench.json").read_text())["results"]) == 1  # the good run is kept
    # an unexpected (non-edgepose) error in the worker: one line, its traceback kept in the file it names
    doc = runner.run_bench([dict(good, runs="three")], isolate=True, progress=False)
    (failure,) = doc["failures"]
    assert "Error" in failure["error"].split(" failed: ")[1] and "Traceback" not in capfd.readouterr().err
    log = Path(failure["error"].rsplit("(traceback in ", 1)[1].rstrip(")"))
    assert "Traceback (most recent call last)" in log.read_text()
    log.unlink()


@pytest.mark.onnxruntime
def test_checks_before_any_timing(bundles, tmp_path, capsys):
    from edgepose.profiling.runner import plan_jobs

    sb = str(bundles["simplebaseline-mnv2s-edge"])
    jobs = plan_jobs([sb, sb + "/", sb + "/."], threads=[1], runs=1, warmup=0, batch=1)
    assert len(jobs) == 1  # one bundle, named three ways
    with pytest.raises(Exception, match="no such file"):
        plan_jobs([sb], threads=[1], runs=1, warmup=0, batch=1, image=str(tmp_path / "typo.jpg"))
    with pytest.raises(Exception, match="--batch 2"):
        plan_jobs([sb, str(bundles["centernet-mnv2s"])], threads=[1], runs=1, warmup=0, batch=2)
    plan_jobs([sb], threads=[64], runs=1, warmup=0, batch=1)
    assert "oversubscription" in capsys.readouterr().err
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(Exception, match="not a readable image"):
        plan_jobs([sb], threads=[1], runs=1, warmup=0, batch=1, image=str(tmp_path / "notes.jpg"))
    with pytest.raises(Exception, match="backend 'tflite' cannot run .*, a 'onnx' bundle; it runs tflite bundles"):
        plan_jobs([sb], threads=[1], runs=1, warmup=0, batch=1, backend="tflite")
    with pytest.raises(Exception, match="--baseline-weights .*no such file"):
        plan_jobs([sb], threads=[1], runs=1, warmup=0, batch=1, baseline="torch",
                  baseline_weights=str(tmp_path / "nope.pt"))


@pytest.mark.onnxruntime
def test_all_runs_failing_keeps_the_previous_report(bundles, tmp_path, capfd, monkeypatch):
    from edgepose.profiling import runner

    good = {"kind": "bundle", "bundle": str(bundles["simplebaseline-mnv2s-edge"]), "threads": 1, "runs": 3,
            "warmup": 1, "batch": 1, "image": None}
    report = tmp_path / "r"
    monkeypatch.setattr(runner, "plan_jobs", lambda *a, **k: [good])
    assert main(["bench", good["bundle"], "--report", str(report), "--quiet"]) == 0
    before = (report / "bench.json").read_text()
    monkeypatch.setattr(runner, "plan_jobs", lambda *a, **k: [dict(good, bundle=str(tmp_path / "vanished"))])
    line = _error(["bench", good["bundle"], "--report", str(report), "--quiet"], capfd)
    assert "every bench run failed" in line and "no report written" in line
    assert (report / "bench.json").read_text() == before
    assert "unknown device" in _error(["bench", good["bundle"], "--device", "nope", "--threads", "1"], capfd)


def test_same_model_target_precision_get_distinct_names():
    from edgepose.profiling.runner import distinct_names

    def res(bundle, decode):
        return {"name": "m · onnx · fp32", "device": "d", "threads": 2, "batch": 1, "bundle": bundle, "decode": decode}

    rows = [res("/x/graph", "graph"), res("/x/host", "host"), res("/y/a", "graph"), res("/y/b", "graph")]
    rows.append(dict(res("/x/other", "graph"), threads=1))  # another thread count: its own row already
    distinct_names(rows)
    assert [r["name"] for r in rows] == ["m · onnx · fp32 · decode graph · graph", "m · onnx · fp32 · decode host",
                                         "m · onnx · fp32 · decode graph · a", "m · onnx · fp32 · decode graph · b",
                                         "m · onnx · fp32"]
