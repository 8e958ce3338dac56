"""The HTML page: self-contained, three SVG plots, and it renders (headless Chromium) to a non-blank page."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odist.report import build_report
from odist.report.render_html import render_html
from odist.storage.objectstore import open_store

from .conftest import write_stream

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def page(real_run, tmp_path_factory) -> str:
    """A report over the real run and a generated live camera (so keyframe rate has several buckets)."""
    live = tmp_path_factory.mktemp("html") / "live"
    write_stream(open_store(str(live)), "live-cam", 600, start=1.78e9, fps=1 / 30, keyframe_every=5)
    return render_html(build_report([str(real_run), str(live)]), top=3)


def svgs(page: str) -> dict[str, ET.Element]:
    found = {}
    for block in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        element = ET.fromstring(block)  # well-formed XML
        found[element.get("id")] = element
    return found


def test_three_plots_as_inline_svg(page):
    plots = svgs(page)
    assert {"plot-cost-histogram", "plot-accuracy-vs-cost", "plot-keyframe-rate-utc",
            "plot-keyframe-rate-stream"} == {name for name in plots if not name.startswith("plot-stream-")}
    ns = "{http://www.w3.org/2000/svg}"
    assert len(plots["plot-cost-histogram"].findall(f"{ns}rect")) > 2  # background + bars
    assert len(plots["plot-accuracy-vs-cost"].findall(f"{ns}circle")) >= 3  # scored cameras + legend
    assert plots["plot-keyframe-rate-utc"].find(f"{ns}polyline") is not None


def test_page_is_self_contained(page):
    assert "<script" not in page.lower() and "<link" not in page.lower()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)  # inline images only
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace name only; nothing is fetched


def test_page_lists_status_and_failures(page):
    assert "Streams not finished" in page
    assert "boom: decoder crashed" in page and "partial" in page
    assert "Most expensive cameras (top 3" in page


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(html: Path, width: int, height: int, tmp_path: Path) -> np.ndarray:
    """``html`` drawn by headless Chromium at ``width`` x ``height`` (RGB, int); skips the test without one."""
    exe = browser()
    if exe is None:
        pytest.skip("no chromium on PATH (apt-get install chromium); the HTML screenshot check needs it")
    png = html.with_suffix(".png")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={png}",
           f"--window-size={width},{height}", "--user-data-dir=" + str(tmp_path / "profile"), html.as_uri()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), result.stderr[-2000:]
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def test_page_renders_in_headless_chromium(page, tmp_path):
    html = tmp_path / "report.html"
    html.write_text(page)
    image = screenshot(html, 1200, 2000, tmp_path)
    assert image.shape[:2] == (2000, 1200)
    not_white = (image < 245).any(axis=2)
    assert not_white.mean() > 0.02
    colours = np.unique(image.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 50

    def near(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(image - np.array(rgb)).sum(axis=2) < 30).sum())

    assert near((0x4E, 0x79, 0xA7)) > 500  # histogram bars and done-camera dots
    assert near((0xE1, 0x57, 0x59)) > 100  # keyframe-rate line (and failed cameras, if scored)
