"""The stream pages of the HTML report: sample frames as inline PNGs that decode, with the class colours
where the masks say so, accuracy and stride over time as inline SVG, and a screenshot in headless Chromium."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from odist.render.overlay import blend
from odist.report import build_report
from odist.report.render_html import html_document, render_html
from odist.report.stream_page import sample_indices, stream_sections
from odist.storage.layout import StreamArea
from odist.storage.masks import decode_mask
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table
from odist.video.open import open_source

from .test_render_html import screenshot, svgs

SCENARIOS = {"cam-a": "synthetic:static_easy", "cam-b": "synthetic:traffic"}  # as the real_run fixture makes them
IMAGE = re.compile(r'<img alt="([^"]+) frame (\d+)" width="(\d+)" height="(\d+)" src="data:image/png;base64,([^"]+)"')


@pytest.fixture(scope="module")
def report(real_run):
    return build_report([str(real_run)])


@pytest.fixture(scope="module")
def page(report) -> str:
    return render_html(report, top=3, stream_pages=2)


def test_each_stream_page_has_sample_frames_that_decode(page, real_run):
    images = IMAGE.findall(page)
    painted = 0
    assert {sid for sid, *_ in images} == {"cam-a", "cam-b"}  # the two least accurate streams with frames
    for sid, index, width, height, data in images:
        picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
        assert picture.shape == (int(height), int(width), 3) == (64, 2 * 96, 3)  # teacher | student
        masks = read_stream_table(StreamArea(open_store(str(real_run)), sid), "masks")
        row = masks.filter(pa.compute.equal(masks.column("frame_index"), int(index))).to_pylist()[0]
        mask = decode_mask(row["data"], row["height"], row["width"])
        frame = open_source(SCENARIOS[sid], width=96, height=64, frames=20).frame(int(index))
        rows = slice(42, 47)  # at 64 px high, the rows between the legend and the status line
        np.testing.assert_array_equal(picture[rows, 96:], blend(frame.image, mask)[rows])  # student
        np.testing.assert_array_equal(picture[rows, :96], blend(frame.image, frame.truth)[rows])  # teacher
        painted += int(mask[rows].any())
    assert painted, "a class is painted in the compared rows"


def test_stream_pages_plot_accuracy_with_keyframes_and_stride(page):
    plots = svgs(page)
    ns = "{http://www.w3.org/2000/svg}"
    for n in range(2):
        accuracy, stride = plots[f"plot-stream-{n}-accuracy"], plots[f"plot-stream-{n}-stride"]
        assert accuracy.find(f"{ns}polyline") is not None and stride.find(f"{ns}polyline") is not None
        keyframe_lines = [line for line in accuracy.findall(f"{ns}line") if line.find(f"{ns}title") is not None]
        assert keyframe_lines, "keyframes are marked"


def test_samples_are_spread_keyframes_then_the_worst_frames():
    records = pa.table({"frame_index": list(range(10)), "keyframe": [i in (0, 4, 8) for i in range(10)],
                        "miou": [0.9, 0.2, 0.8, 0.1, 0.9, 0.7, 0.3, 0.9, 0.9, 0.95]})
    assert sample_indices(records, keyframes=2, worst=2) == [0, 8, 3, 1]


def test_no_stream_pages_with_zero(report):
    page = render_html(report, top=3, stream_pages=0)
    assert "Stream pages" not in page and "<img" not in page


def test_stream_page_renders_in_headless_chromium(report, tmp_path):
    html = tmp_path / "streams.html"
    html.write_text(html_document("odist stream pages", stream_sections(report, 1)))
    image = screenshot(html, 1100, 620, tmp_path)
    assert image.shape[:2] == (620, 1100)
    assert (image < 245).any(axis=2).mean() > 0.05  # not a blank page
    assert len(np.unique(image.reshape(-1, 3)[::5], axis=0)) > 50  # the frames' pictures are drawn
