"""bench.html renders in a real browser: headless Chromium screenshots the page, and the plots show up.

Chromium is a system package that ``make setup`` installs (Debian's ``chromium``); this test fails, never
skips, when it is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgepose.profiling.report import write_reports

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2400
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}")
INFERENCE_ORANGE_BGR = (43, 142, 242)  # plots.STAGE_COLOURS["inference"] = #f28e2b


def _screenshot(page: Path, work: Path) -> np.ndarray:
    import cv2

    shot = work / f"{page.stem}.png"
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={work / ('profile-' + page.stem)}", f"--screenshot={shot}",
           page.resolve().as_uri()]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish the screenshot of {page} within 60 s")
    assert shot.is_file(), f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}"
    img = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert img is not None, f"cannot decode the screenshot {shot}"
    return img


def _non_white(img: np.ndarray) -> int:
    return int(np.count_nonzero(img.min(axis=2) < 235))


def _colours(img: np.ndarray) -> int:
    return len(np.unique(img.reshape(-1, 3) // 8, axis=0))  # distinct colours, quantized to 32 levels each


@pytest.mark.slow
def test_bench_html_renders_plots_in_chromium(bench_doc, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: `make setup` installs it "
                    "(apt-get install --no-install-recommends chromium); this test may not be skipped")
    page = write_reports(bench_doc, tmp_path / "report")["html"]
    text = page.read_text(encoding="utf-8")
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<img [^>]*>", "", text), encoding="utf-8")
    assert text.count("<img ") == 3 and "<img" not in bare.read_text(encoding="utf-8")

    with_plots = _screenshot(page, tmp_path)
    without = _screenshot(bare, tmp_path)
    assert with_plots.shape == (HEIGHT, WIDTH, 3) and without.shape == (HEIGHT, WIDTH, 3)
    assert _non_white(without) > 20_000, "the tables did not render (the page looks blank)"
    # the plots are mostly white figure background: ~80k more non-white pixels and ~50 more colours when rendered
    extra = _non_white(with_plots) - _non_white(without)
    assert extra > 0.01 * WIDTH * HEIGHT and extra > 0.4 * _non_white(without), \
        f"the plots add only {extra} non-white pixels to the {_non_white(without)} of the bare page"
    assert _colours(with_plots) > _colours(without) + 25
    orange = np.all(np.abs(with_plots.astype(int) - INFERENCE_ORANGE_BGR) <= 12, axis=2)
    assert orange.sum() > 5_000, "the stage-breakdown bars (inference, orange) are not on the page"
