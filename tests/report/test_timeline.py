"""Time buckets: stream-relative and wall-clock (unix) timestamps, unit choice, labels, cost per bucket."""

from __future__ import annotations

import calendar

import numpy as np
import pytest

from odist.errors import ConfigError
from odist.report import build_report
from odist.report.timeline import bucket_label
from odist.storage.objectstore import open_store

from .conftest import write_stream

MIDNIGHT = calendar.timegm((2026, 5, 1, 0, 0, 0))


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """Two live cameras at 1 frame per 60 s over about 30 hours, and an archive clip of 2 minutes at 1 fps."""
    root = tmp_path_factory.mktemp("timeline") / "run"
    store = open_store(str(root))
    cams = {
        "north": write_stream(store, "north", 1800, start=MIDNIGHT, fps=1 / 60, keyframe_every=4, segment=500),
        "south": write_stream(store, "south", 600, start=MIDNIGHT + 6 * 3600, fps=1 / 60, keyframe_every=10,
                              segment=500, seed=1),
        "clip": write_stream(store, "clip", 120, fps=1.0, keyframe_every=8, seed=2),
    }
    return str(root), cams


def expected_buckets(cams: dict, names: list[str], width: int) -> dict[float, tuple[int, int, float]]:
    """Bucket start -> (frames, keyframes, teacher seconds), by plain numpy."""
    out: dict[float, list] = {}
    for name in names:
        c = cams[name]
        starts = np.floor(np.floor(c["timestamp"]) / width) * width
        for start in np.unique(starts):
            sel = starts == start
            entry = out.setdefault(float(start), [0, 0, 0.0])
            entry[0] += int(sel.sum())
            entry[1] += int(c["keyframe"][sel].sum())
            entry[2] += float(c["teacher_seconds"][sel].astype(np.float64).sum())
    return {k: tuple(v) for k, v in out.items()}


def test_hour_buckets_on_both_clocks(live_run):
    uri, cams = live_run
    report = build_report([uri], unit="hour")
    rows = report.timeline.to_pylist()
    utc = {r["bucket_start"]: r for r in rows if r["clock"] == "utc"}
    stream = [r for r in rows if r["clock"] == "stream"]
    assert [r["clock"] for r in rows] == ["utc"] * len(utc) + ["stream"] * len(stream)  # utc first, in time order
    expected = expected_buckets(cams, ["north", "south"], 3600)
    assert sorted(utc) == sorted(expected) and len(utc) == 30
    for start, (frames, keyframes, teacher) in expected.items():
        row = utc[start]
        assert (row["frames"], row["keyframes"]) == (frames, keyframes)
        assert row["keyframe_rate"] == pytest.approx(keyframes / frames)
        assert row["teacher_seconds"] == pytest.approx(teacher)
    assert utc[MIDNIGHT]["cameras"] == 1 and utc[MIDNIGHT + 6 * 3600]["cameras"] == 2
    assert utc[MIDNIGHT + 6 * 3600]["bucket"] == "2026-05-01 06:00"
    assert [(r["bucket"], r["frames"], r["cameras"]) for r in stream] == [("+0h", 120, 1)]


def test_bucket_costs_add_up_to_the_total(live_run):
    uri, _ = live_run
    for unit in ("minute", "hour", "day"):
        report = build_report([uri], unit=unit)
        assert sum(report.timeline.column("cost").to_pylist()) == pytest.approx(report.totals["cost"])
        assert sum(report.timeline.column("frames").to_pylist()) == report.totals["frames"]


def test_day_buckets_and_automatic_unit(live_run):
    uri, _ = live_run
    days = build_report([uri], unit="day").timeline.to_pylist()
    assert [(r["bucket"], r["frames"]) for r in days if r["clock"] == "utc"] == [
        ("2026-05-01", 1440 + 600), ("2026-05-02", 360)]
    assert build_report([uri]).unit == "hour"  # about 30 hours of wall clock: 30 hour buckets, nearest 24


def test_automatic_unit_of_short_clips(tmp_path):
    store = open_store(str(tmp_path / "run"))
    write_stream(store, "a", 60)  # 2 s at 30 fps
    assert build_report([str(tmp_path / "run")]).unit == "second"


def test_labels_and_bad_unit(tmp_path):
    assert bucket_label("stream", 7200.0, "hour") == "+2h"
    assert bucket_label("stream", 120.0, "minute") == "+2m"
    assert bucket_label("utc", MIDNIGHT + 61.0, "second") == "2026-05-01 00:01:01"
    store = open_store(str(tmp_path / "run"))
    write_stream(store, "a", 10)
    with pytest.raises(ConfigError, match="unknown time bucket 'week'"):
        build_report([str(tmp_path / "run")], unit="week")
