"""The terminal report: totals, ranked cameras, unfinished streams and the timeline."""

from __future__ import annotations

import pytest

from odist.report import build_report
from odist.report.render_table import grid, money, num, render_table
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store

from .conftest import write_stream


@pytest.fixture(scope="module")
def text(real_run):
    return render_table(build_report([str(real_run)]), top=2)


def section(text: str, title: str) -> list[str]:
    """The lines of the section starting with ``title`` up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1:end]


def test_totals_lines(text, real_run):
    assert "fleet: 5 streams (2 done, 1 partial, 2 failed, 0 empty) in " + str(real_run) in text
    assert "video: 60 frames" in text
    assert "speed-up vs teacher on every frame:" in text
    assert "mIoU" in text and "over 2 cameras" in text
    assert "USD per camera-hour" in text


def test_ranked_cameras_are_limited_to_top(text, real_run):
    expensive = section(text, "most expensive cameras")
    assert expensive[0].split()[:2] == ["STREAM", "STATUS"]
    assert len(expensive) == 3  # header + top 2
    least = section(text, "least accurate cameras")
    assert {line.split()[0] for line in least[1:]} == {"cam-a", "cam-b"}  # the only scored ones


def test_unfinished_streams_show_status_and_error(text):
    rows = {line.split()[0]: line for line in section(text, "streams not finished")[1:]}
    assert set(rows) == {"cam-c", "cam-d", "broken"}
    assert "partial" in rows["cam-c"] and "at frame 12" in rows["cam-c"]
    assert "failed" in rows["cam-d"] and "boom: decoder crashed" in rows["cam-d"]


def test_timeline_section(text):
    rows = section(text, "keyframe rate and cost per second")
    assert rows[0].split() == ["BUCKET", "CLOCK", "CAMERAS", "FRAMES", "KEYFRAME", "RATE", "COST"]
    assert rows[1].split()[:4] == ["+0s", "stream", "4", "60"]


def test_helpers():
    assert num(None) == "n/a" and num(float("nan")) == "n/a"
    assert num(12345) == "12,345" and num(0.5) == "0.500" and num(0.00001234) == "1.23e-05"
    assert grid(["A", "BB"], [["xxx", "y"]]) == ["A    BB", "xxx  y"]


def test_long_lists_of_unfinished_streams_are_cut(tmp_path):
    store = open_store(str(tmp_path / "run"))
    for i in range(23):
        write_stream(store, f"cam-{i:02d}", 5, finish=False)
    StreamArea(store, "cam-22").fail("boom")
    text = render_table(build_report([str(tmp_path / "run")]), top=3)
    rows = section(text, "streams not finished (23)")
    assert rows[1].split()[:2] == ["cam-22", "failed"]  # failed first
    assert len(rows) == 1 + 20 + 1 and rows[-1] == "... and 3 more (every stream is in the file outputs)"


@pytest.mark.parametrize(("value", "shown"), [(2.684, "2.68 USD"), (0.00264, "0.0026 USD"),
                                              (8.582e-05, "0.0000858 USD"), (4.078e-07, "0.000000408 USD"),
                                              (0.0, "0.0000 USD"), (None, "n/a")])
def test_small_amounts_read_as_decimals_not_exponents(value, shown):
    assert money(value, "USD") == shown
