"""Benchmark report writers: JSON/Markdown/HTML output, load + validate, merge, atomic writes."""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from edgepose.errors import ConfigError
from edgepose.profiling import plots, report
from edgepose.profiling.report import load_report, merge, write_reports
from edgepose.profiling.schema import STAT_KEYS, percentiles, validate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _table_rows(md: str) -> list[list[str]]:
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines[1:]]  # skip the header


# ------------------------------------------------------------------------------------------------- schema

def test_percentiles_match_numpy():
    x = np.random.default_rng(3).gamma(2.0, 3.0, 257)
    st = percentiles(x)
    assert tuple(st) == STAT_KEYS
    np.testing.assert_allclose([st["p50"], st["p90"], st["p99"]], np.percentile(x, [50, 90, 99]))
    assert st["min"] == x.min() and st["max"] == x.max() and st["std"] == pytest.approx(x.std())
    assert percentiles([4.0])["std"] == 0.0
    with pytest.raises(ConfigError, match="no samples"):
        percentiles([])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: [], "received a JSON list"),
    (lambda d: {**d, "schema": "other"}, "expected 'edgepose.bench'"),
    (lambda d: {**d, "schema_version": 2}, "schema version 2; this edgepose reads version 1"),
    (lambda d: {k: v for k, v in d.items() if k != "devices"}, "missing key.*devices"),
    (lambda d: {**d, "results": [{k: v for k, v in d["results"][0].items() if k != "fps"}]}, "missing key.*fps"),
    (lambda d: {**d, "results": [{**d["results"][0], "device": "pi5"}]}, "device 'pi5' is not in 'devices'"),
    (lambda d: {**d, "results": [{**d["results"][0], "role": "main"}]}, "role 'main'"),
    (lambda d: {**d, "results": [{**d["results"][0], "threads": "two"}]}, "'threads' received 'two'"),
    (lambda d: {**d, "results": [{**d["results"][0], "fps": None}]}, "'fps' received None; expected a number"),
    (lambda d: {**d, "results": [{**d["results"][0], "stages": {**d["results"][0]["stages"],
                                                                "total": {**d["results"][0]["stages"]["total"],
                                                                          "p50": "x"}}}]},
     "stages.total received .*expected numbers"),
])
def test_validate_rejects(bench_doc, mutate, message):
    with pytest.raises(ConfigError, match=message):
        validate(mutate(bench_doc), source="x.json")


# ------------------------------------------------------------------------------------------------- writers

def test_write_reports_round_trip(bench_doc, tmp_path):
    out = tmp_path / "new" / "reports"
    paths = write_reports(bench_doc, out)
    assert {k: p.name for k, p in paths.items()} == {"json": "bench.json", "md": "bench.md", "html": "bench.html"}
    back = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert validate(back) == bench_doc
    assert load_report(paths["json"]) == bench_doc
    assert sorted(p.name for p in out.iterdir()) == ["bench.html", "bench.json", "bench.md"]  # no temp files


def test_markdown_table_and_speedup(bench_doc, tmp_path):
    md = write_reports(bench_doc, tmp_path)["md"].read_text(encoding="utf-8")
    assert "AMD EPYC 7B13 · 2 cores · x86_64" in md and "onnxruntime 1.20.1" in md
    rows = _table_rows(md)
    assert len(rows) == len(bench_doc["results"])
    cols = list(report.COLUMNS)
    by_name = {r[0]: dict(zip(cols, r)) for r in rows}
    res = {r["name"]: r for r in bench_doc["results"]}
    base = res["simplebaseline-mnv2s-edge · pytorch · fp32"]["stages"]["total"]["p50"]
    int8 = res["simplebaseline-mnv2s-edge · onnx · int8"]
    assert by_name[int8["name"]]["speed-up"] == f"{base / int8['stages']['total']['p50']:.2f}×"
    assert by_name["simplebaseline-mnv2s-edge · pytorch · fp32"]["speed-up"] == "1.00× (baseline)"
    assert by_name["centernet-mnv2s · openvino · fp16"]["speed-up"] == "–"  # no baseline for this model
    assert by_name[int8["name"]]["AP"] == "70.3" and by_name[int8["name"]]["AP drop"] == "1.10"
    assert by_name[int8["name"]]["p50 total ms"] == f"{int8['stages']['total']['p50']:.2f}"


def test_html_is_self_contained_with_three_plots(bench_doc, tmp_path):
    page = write_reports(bench_doc, tmp_path)["html"].read_text(encoding="utf-8")
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    for data in images:
        png = base64.b64decode(data, validate=True)
        assert png.startswith(PNG_MAGIC) and 5_000 < len(png) < 400_000
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    assert page.count("<tr") == 1 + 1 + 1 + len(bench_doc["results"])  # 2 header rows, 1 device, results
    assert "AMD EPYC 7B13" in page and "avx512f" in page


def test_html_without_matplotlib_says_how_to_get_plots(bench_doc, tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "is_available", lambda: False)
    page = write_reports(bench_doc, tmp_path)["html"].read_text(encoding="utf-8")
    assert "<img" not in page
    assert "pip install &#x27;edgepose[report]&#x27; for plots" in page


def test_accuracy_plot_without_accuracy_and_wide_spread(bench_doc):
    results = copy.deepcopy(bench_doc["results"])
    for r in results:
        r["accuracy"] = None
    results[0]["samples_ms"]["total"] = [x * 50 for x in results[0]["samples_ms"]["total"]]  # log x-axis
    assert plots.accuracy_vs_latency_png(results).startswith(PNG_MAGIC)
    assert plots.latency_distribution_png(results).startswith(PNG_MAGIC)


def test_atomic_write_leaves_no_temp_files_on_failure(bench_doc, tmp_path, monkeypatch):
    (tmp_path / "bench.html").write_text("old", encoding="utf-8")
    real_replace = report.os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("bench.html"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(report.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_reports(bench_doc, tmp_path)
    assert (tmp_path / "bench.html").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.html", "bench.json", "bench.md"]


# --------------------------------------------------------------------------------------------- load/merge

def test_load_corrupt_json_names_the_file(bench_doc, tmp_path):
    path = write_reports(bench_doc, tmp_path)["json"]
    path.write_text(path.read_text(encoding="utf-8")[:500], encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*not valid JSON"):
        load_report(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_report(tmp_path / "missing.json")


def test_merge_two_devices(bench_doc, make_doc, tmp_path):
    pi = make_doc(seed=1, device="rpi5-4c", fingerprint={"label": "Raspberry Pi 5 · 4 cores · aarch64",
                                                         "raspberry_pi": "Raspberry Pi 5 Model B Rev 1.0"})
    a = write_reports(bench_doc, tmp_path / "a")["json"]
    b = write_reports(pi, tmp_path / "b")["json"]
    merged = merge([a, b])
    validate(merged)
    assert list(merged["devices"]) == ["amd-epyc-7b13-2c", "rpi5-4c"]
    assert len(merged["results"]) == 8
    assert [m["source"] for m in merged["merged_from"]] == [str(a), str(b)]
    rows = _table_rows(write_reports(merged, tmp_path / "m")["md"].read_text(encoding="utf-8"))
    assert len(rows) == 8
    assert sum(r[list(report.COLUMNS).index("speed-up")].endswith("(baseline)") for r in rows) == 2  # one per device
    assert "Raspberry Pi 5" in (tmp_path / "m" / "bench.html").read_text(encoding="utf-8")


def test_merge_same_device_id(bench_doc, make_doc):
    other = make_doc(seed=2, fingerprint={**bench_doc["devices"]["amd-epyc-7b13-2c"], "os": "Linux 6.8 (Ubuntu)"})
    merged = merge([bench_doc, make_doc(seed=5), other], sources=["a.json", "b.json", "c.json"])
    assert list(merged["devices"]) == ["amd-epyc-7b13-2c", "amd-epyc-7b13-2c-2"]  # same fingerprint shares the id
    assert [r["device"] for r in merged["results"]] == ["amd-epyc-7b13-2c"] * 8 + ["amd-epyc-7b13-2c-2"] * 4
    assert len(merge([merged, make_doc(seed=7)])["merged_from"]) == 4  # a merged input carries its sources over
    with pytest.raises(ConfigError, match="repeats the result"):
        merge([merged, bench_doc], sources=["m.json", "a.json"])  # bench_doc is already in it


def test_merge_rejects_another_schema_version(bench_doc, tmp_path):
    newer = {**bench_doc, "schema_version": 2}
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(newer), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"newer\.json: written by schema version 2; this edgepose reads version 1"):
        merge([bench_doc, path])
    with pytest.raises(ConfigError, match="schema version 2"):
        merge([bench_doc, newer])
    with pytest.raises(ConfigError, match="no benchmark reports"):
        merge([])


def test_report_module_imports_no_matplotlib():
    code = "import sys, edgepose.profiling.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
