"""Benchmark report writers: ``bench.json``, ``bench.md`` and one self-contained ``bench.html``; load and merge.

The document format is :mod:`edgepose.profiling.schema`. The HTML page has no external reference at all
(inline CSS, plots embedded as base64 PNG data URIs), so it can be mailed or attached to a CI run as is.
Without matplotlib (``pip install 'edgepose[report]'``) the page is written without plots, with a note.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as _dt
import html
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from edgepose.errors import ConfigError
from edgepose.profiling import plots
from edgepose.profiling.schema import SCHEMA, SCHEMA_VERSION, validate

FILES = {"json": "bench.json", "md": "bench.md", "html": "bench.html"}
COLUMNS = ("name", "device", "threads", "batch", "p50 total ms", "p90", "p99", "FPS", "speed-up",
           "preprocess / inference / decode p50 ms", "peak RSS MB", "size MB", "AP", "AP drop")
FINGERPRINT_FIELDS = ("label", "cpu_model", "isa", "cores_logical", "cores_physical", "cores_usable", "os",
                      "machine", "python", "jetson", "raspberry_pi", "gpu", "profile", "versions")
CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #555; } code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d8d8d8; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f5f9; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.baseline td { background: #fbf8e8; }
figure { margin: 12px 0 20px; } figcaption { font-weight: 600; margin-bottom: 4px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { background: #fff4e5; border: 1px solid #f0c27b; padding: 8px 12px; display: inline-block; }
"""


# ----------------------------------------------------------------------------------------------- load/write

def _atomic_write(path: Path, data: bytes) -> None:
    # open(..., "xb") rather than mkstemp: the report gets the umask's permissions (mkstemp's are 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _json_default(obj):
    import numpy as np

    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to a benchmark report; expected JSON types or numpy values")


def load_report(path: str | os.PathLike) -> dict:
    """Read and validate a ``bench.json``; a missing, unreadable or corrupt file raises ConfigError naming it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read benchmark report {p}: {exc.strerror or exc}; expected a bench.json "
                          "written by `edgepose bench`") from None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"benchmark report {p} is not valid JSON ({exc}); expected a bench.json written by "
                          "`edgepose bench`") from None
    return validate(doc, source=str(p))


def write_reports(doc: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Validate ``doc`` and write ``bench.json``, ``bench.md`` and ``bench.html`` into ``out_dir`` (created).

    Each file is written atomically (temp file in ``out_dir`` + ``os.replace``). Returns
    ``{"json": path, "md": path, "html": path}``.
    """
    validate(doc, source="benchmark document")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report folder {out}: {exc.strerror or exc}; expected a writable "
                          "path") from None
    texts = {"json": json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default) + "\n",
             "md": to_markdown(doc), "html": to_html(doc, base=out)}
    paths = {}
    for key, text in texts.items():
        paths[key] = out / FILES[key]
        _atomic_write(paths[key], text.encode("utf-8"))
    return paths


# ---------------------------------------------------------------------------------------------------- merge

def _fingerprint_key(fp: dict) -> str:
    return json.dumps(fp, sort_keys=True, default=str)


def _place_device(dev_id: str, fp: dict, devices: dict) -> str:
    """The id under which ``fp`` lives in ``devices``: ``dev_id``, or ``dev_id-2``, ``-3``... on a clash."""
    key = _fingerprint_key(fp)
    candidate, n = dev_id, 1
    while candidate in devices:
        if _fingerprint_key(devices[candidate]) == key:
            return candidate
        n += 1
        candidate = f"{dev_id}-{n}"
    devices[candidate] = copy.deepcopy(fp)
    return candidate


def merge(docs: Sequence[dict | str | os.PathLike], *, sources: Sequence[str] | None = None) -> dict:
    """Merge benchmark documents (dicts or paths to ``bench.json``) into one report.

    Each input is validated. Devices are unioned: the same device id with a different fingerprint gets a
    ``-2``, ``-3``... suffix (and its results follow it). Results are concatenated in input order, and
    ``"merged_from"`` records each source (path, or ``sources[i]``, or ``"<document i>"``), its command and
    creation time; merging a merged report carries its sources over.
    """
    if not docs:
        raise ConfigError("merge: received no benchmark reports; expected at least one")
    if sources is not None and len(sources) != len(docs):
        raise ConfigError(f"merge: received {len(sources)} source names for {len(docs)} reports; expected one each")
    devices: dict[str, dict] = {}
    results: list[dict] = []
    merged_from: list[dict] = []
    seen: dict[str, str] = {}  # a result (with its device's fingerprint) → the input it came from
    for i, item in enumerate(docs):
        if isinstance(item, dict):
            name = sources[i] if sources is not None else f"<document {i}>"
            doc = validate(item, source=name)
        else:
            name = sources[i] if sources is not None else str(item)
            doc = load_report(item)
        ids = {dev: _place_device(dev, fp, devices) for dev, fp in doc["devices"].items()}
        for res in doc["results"]:
            res = copy.deepcopy(res)
            res["device"] = ids[res["device"]]
            key = json.dumps({**res, "device": devices[res["device"]]}, sort_keys=True, default=str)
            if key in seen:
                raise ConfigError(f"merge: {name} repeats the result {res['name']!r} of {seen[key]} (the same run "
                                  "given twice?); expected reports of different runs")
            seen[key] = name
            results.append(res)
        merged_from.extend(doc.get("merged_from") or [{"source": name, "command": doc["command"],
                                                        "created": doc["created"],
                                                        "edgepose_version": doc["edgepose_version"]}])
    from edgepose import __version__

    commands = list(dict.fromkeys(str(m.get("command", "")) for m in merged_from))
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgepose_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": "merge of: " + " ; ".join(commands), "devices": devices, "results": results,
            "merged_from": merged_from}


# ----------------------------------------------------------------------------------------- shared table rows

def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return str(value)


def speedups(results: Sequence[dict]) -> list[float | None]:
    """Per result: the p50 total of the first ``role == "baseline"`` result with the same model, device and
    threads, divided by this result's p50 total (``None`` without such a baseline)."""
    base: dict[tuple, float] = {}
    for r in results:
        if r["role"] == "baseline":
            base.setdefault((r["model"], r["device"], r["threads"]), float(r["stages"]["total"]["p50"]))
    out: list[float | None] = []
    for r in results:
        b = base.get((r["model"], r["device"], r["threads"]))
        mine = float(r["stages"]["total"]["p50"])
        out.append(b / mine if b is not None and mine > 0 else None)
    return out


def result_rows(results: Sequence[dict]) -> list[list[str]]:
    """The results table as text cells in :data:`COLUMNS` order (shared by the Markdown and HTML writers)."""
    rows = []
    for r, up in zip(results, speedups(results)):
        st = r["stages"]
        acc = r.get("accuracy") or {}
        speed = "–" if up is None else f"{up:.2f}×" + (" (baseline)" if r["role"] == "baseline" else "")
        stages = " / ".join(_fmt(st[s]["p50"]) for s in ("preprocess", "inference", "decode"))
        rows.append([str(r["name"]), str(r["device"]), str(r["threads"]), str(r["batch"]),
                     _fmt(st["total"]["p50"]), _fmt(st["total"]["p90"]), _fmt(st["total"]["p99"]), _fmt(r["fps"], 1),
                     speed, stages, _fmt(r["peak_rss_mb"], 1), _fmt(r["model_size_mb"]), _fmt(acc.get("AP"), 1),
                     _drop_cell(acc)])
    return rows


def _drop_cell(acc: dict) -> str:
    """The AP drop, with the gate's 95 % interval when the manifest has one: "0.95 (-0.41 to 2.30)"."""
    ci = acc.get("ap_drop_interval95")
    spread = f" ({_fmt(ci[0], 2)} to {_fmt(ci[1], 2)})" if isinstance(ci, list) and len(ci) == 2 else ""
    return _fmt(acc.get("ap_drop"), 2) + spread


def _versions(fp: dict) -> str:
    versions = fp.get("versions") or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "–"


# ------------------------------------------------------------------------------------------------- markdown

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: dict) -> str:
    """The report as Markdown: a header with the device label(s) and versions, then one results table."""
    lines = ["# edgepose benchmark", "",
             f"Created {doc['created']} by edgepose {doc['edgepose_version']}: `{doc['command']}`", ""]
    for dev_id, fp in doc["devices"].items():
        lines.append(f"- **{dev_id}**: {fp.get('label') or '?'} — {fp.get('os') or '?'}, Python "
                     f"{fp.get('python') or '?'}; {_versions(fp)}")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" if i < 2 else "--:" for i in
                                                                   range(len(COLUMNS))) + "|"]
    for row in result_rows(doc["results"]):
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    lines += ["", "Times in ms over timed runs (after warm-up); speed-up = baseline p50 / p50 for the same model, "
              "device and threads.", ""]
    for sec in doc.get("sections", []):
        lines += [f"## {sec['title']}", ""]
        if sec.get("rows"):
            lines += ["| " + " | ".join(sec["headers"]) + " |", "|" + "|".join("---" for _ in sec["headers"]) + "|"]
            lines += ["| " + " | ".join(_md_cell(str(c)) for c in row) + " |" for row in sec["rows"]]
            lines.append("")
        lines += [f"- {_md_cell(n)}" for n in sec.get("notes", [])]
        lines += [f"![{_md_cell(im['caption'])}]({im['file']})" for im in sec.get("images", [])]
        lines.append("")
    return "\n".join(lines)


def _sections_html(doc: dict, base: Path | None) -> str:
    """Extra sections (``doc["sections"]``: title, headers + rows, notes, images relative to the report
    folder). Images are embedded as base64 so the page stays self-contained."""
    parts = []
    for sec in doc.get("sections", []):
        parts.append(f"<h2>{html.escape(sec['title'])}</h2>")
        if sec.get("rows"):
            parts.append(_html_table(sec["headers"], [[str(c) for c in r] for r in sec["rows"]]))
        if sec.get("notes"):
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in sec["notes"]) + "</ul>")
        for im in sec.get("images", []):
            path = (base or Path(".")) / im["file"]
            if not path.is_file():
                parts.append(f'<p class="note">missing image {html.escape(im["file"])}</p>')
                continue
            mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f'<figure><figcaption>{html.escape(im["caption"])}</figcaption>'
                         f'<img alt="{html.escape(im["caption"])}" src="data:{mime};base64,{data}"></figure>')
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------------------- html

def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], num_from: int = 2,
                row_classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{html.escape(c)}</td>' if j >= num_from else f"<td>{html.escape(c)}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _fingerprint_cell(field: str, value) -> str:
    if field == "versions":
        return _versions({"versions": value})
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "–"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return "–" if value is None else str(value)


def _plots_html(results: Sequence[dict]) -> str:
    if not results:
        return '<p class="note">no results to plot</p>'
    if not plots.is_available():
        return f'<p class="note">Plots need matplotlib: {html.escape(plots.INSTALL_HINT)}</p>'
    parts = []
    for key, (title, png) in plots.render_all(results).items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure id="plot-{key}"><figcaption>{html.escape(title)}</figcaption>'
                     f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}"></figure>')
    return "\n".join(parts)


def to_html(doc: dict, base: Path | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS, base64 PNG plots, no external URL); ``base`` is
    the folder that images of extra sections are relative to."""
    devs = doc["devices"]
    dev_rows = [[dev_id] + [_fingerprint_cell(f, fp.get(f)) for f in FINGERPRINT_FIELDS] for dev_id, fp in devs.items()]
    labels = " + ".join(str(fp.get("label") or dev_id) for dev_id, fp in devs.items()) or "no device"
    roles = ["baseline" if r["role"] == "baseline" else "" for r in doc["results"]]
    title = f"edgepose benchmark — {labels}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Created {html.escape(str(doc["created"]))} by edgepose '
        f'{html.escape(str(doc["edgepose_version"]))}: <code>{html.escape(str(doc["command"]))}</code></p>',
        "<h2>Devices</h2>", _html_table(("id",) + FINGERPRINT_FIELDS, dev_rows, num_from=len(FINGERPRINT_FIELDS) + 1),
        "<h2>Results</h2>", _html_table(COLUMNS, result_rows(doc["results"]), row_classes=roles),
        '<p class="meta">Times in ms; speed-up = baseline p50 / p50 for the same model, device and threads.</p>',
        "<h2>Plots</h2>", _plots_html(doc["results"]), _sections_html(doc, base), "</body></html>", ""])
