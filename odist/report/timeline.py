"""Keyframe rate and cost per time bucket (second, minute, hour or day), over the whole fleet.

Archive streams count time from their own start (``clock`` = ``stream``: bucket 0 is every stream's first
hour); live cameras stamp frames with unix time (``clock`` = ``utc``: buckets are calendar hours or days).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from odist.errors import ConfigError
from odist.report.figures import WALL_CLOCK, column
from odist.report.prices import Prices

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
AUTO_BUCKETS = 24  # auto: aim for about this many buckets
TIMELINE_COLUMNS = ("clock", "bucket", "bucket_start", "cameras", "frames", "keyframes", "keyframe_rate",
                    "teacher_seconds", "student_seconds", "cost")


def choose_unit(seconds: pa.Table, unit: str) -> str:
    """``unit``, or for ``auto`` the unit giving nearest ``AUTO_BUCKETS`` buckets over the longest clock."""
    if unit != "auto":
        if unit not in UNITS:
            raise ConfigError(f"unknown time bucket {unit!r}", f"use auto or one of {', '.join(UNITS)}")
        return unit
    second = column(seconds, "second")
    span = 1.0
    for clock in (second[second > WALL_CLOCK], second[second <= WALL_CLOCK]):
        if clock.size:
            span = max(span, float(clock.max() - (clock.min() if clock.min() > WALL_CLOCK else 0.0)) + 1.0)
    return min(UNITS, key=lambda name: abs(math.log(math.ceil(span / UNITS[name]) / AUTO_BUCKETS)))


def timeline(seconds: pa.Table, figures: pa.Table, prices: Prices, unit: str) -> pa.Table:
    """One row per clock and bucket: cameras seen, frames, keyframes, keyframe rate, device time and cost."""
    width = UNITS[unit]
    rates = _rates(figures, prices)
    rows = seconds.join(rates, keys=["run", "stream_id"], join_type="left outer")
    second = column(rows, "second")
    start = np.floor(second / width) * width
    cost = column(rows, "teacher_seconds") * column(rows, "teacher_rate") + column(
        rows, "student_seconds") * column(rows, "student_rate")
    rows = pa.table({
        "clock": np.where(second > WALL_CLOCK, "utc", "stream"), "bucket_start": start,
        "camera": pc.binary_join_element_wise(rows.column("run"), rows.column("stream_id"), "\x1f"),
        "frames": rows.column("frames"), "keyframes": rows.column("keyframes"),
        "teacher_seconds": rows.column("teacher_seconds"), "student_seconds": rows.column("student_seconds"),
        "cost": cost,
    })
    grouped = rows.group_by(["clock", "bucket_start"]).aggregate([
        ("camera", "count_distinct"), ("frames", "sum"), ("keyframes", "sum"), ("teacher_seconds", "sum"),
        ("student_seconds", "sum"), ("cost", "sum")])
    grouped = grouped.rename_columns([n.removesuffix("_sum").replace("camera_count_distinct", "cameras")
                                      for n in grouped.column_names]).sort_by([("clock", "descending"),
                                                                               ("bucket_start", "ascending")])
    frames, keyframes = column(grouped, "frames"), column(grouped, "keyframes")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(frames > 0, keyframes / np.maximum(frames, 1), np.nan)
    labels = [bucket_label(c, s, unit) for c, s in zip(grouped.column("clock").to_pylist(),
                                                       grouped.column("bucket_start").to_pylist(), strict=True)]
    grouped = grouped.append_column("keyframe_rate", pa.array(rate)).append_column("bucket", pa.array(labels))
    return grouped.select(list(TIMELINE_COLUMNS))


def _rates(figures: pa.Table, prices: Prices) -> pa.Table:
    """Per stream: the price of one second of its teacher and of its student."""
    _, teacher_hour = prices.teacher_rate()
    student_hour = [prices.device_hour(device) if prices.student_instance is None else prices.student_rate(None)[1]
                    for device in figures.column("student_device").to_pylist()]
    return pa.table({"run": figures.column("run"), "stream_id": figures.column("stream_id"),
                     "teacher_rate": pa.array([teacher_hour / 3600.0] * figures.num_rows, pa.float64()),
                     "student_rate": pa.array(np.array(student_hour, dtype=np.float64) / 3600.0)})


def bucket_label(clock: str, start: float, unit: str) -> str:
    """``2026-05-01 13:00`` (UTC) for live cameras; ``+3h`` (from each stream's start) for archives."""
    if clock == "stream":
        return f"+{int(start // UNITS[unit])}{unit[0]}"
    fmt = {"second": "%Y-%m-%d %H:%M:%S", "minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H:00",
           "day": "%Y-%m-%d"}[unit]
    return time.strftime(fmt, time.gmtime(start))
