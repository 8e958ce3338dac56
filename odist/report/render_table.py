"""The report for a terminal: fleet totals, the most expensive and the least accurate cameras, streams
that did not finish, and keyframe rate and cost over time."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from odist.report.report import Report

MAX_TIMELINE_ROWS = 48
MIN_UNFINISHED_ROWS = 20


def num(value: Any, digits: int = 3) -> str:
    """A figure for people: ``n/a`` for missing values, thousands separators for large ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.{digits}g}"
    return f"{value:,.{digits}f}"


def money(value: Any, currency: str) -> str:
    """An amount: ``2.68 USD``, ``0.0026 USD``, ``0.0000858 USD``, or ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    digits = 2 if abs(value) >= 1 else 4
    if value and abs(value) < 10 ** -digits:  # three significant figures, not 8.582e-05
        digits = 2 - math.floor(math.log10(abs(value)))
    return f"{num(value, digits)} {currency}"


def times(value: Any) -> str:
    """A speed-up: ``3.9x``, or ``n/a``."""
    text = num(value, 1)
    return text if text == "n/a" else f"{text}x"


def totals_lines(report: Report) -> list[str]:
    """The fleet's headline numbers, one fact per line."""
    t, cur = report.totals, report.prices.currency
    runs = f"{t['runs']} runs" if t["runs"] > 1 else report.runs[0]
    return [
        f"fleet: {num(t['streams'])} streams ({num(t['done'])} done, {num(t['partial'])} partial, "
        f"{num(t['failed'])} failed, {num(t['empty'])} empty) in {runs}",
        f"video: {num(t['frames'])} frames, {num(t['hours'])} camera-hours, {num(t['dropped_frames'])} dropped",
        f"keyframes: {num(t['keyframes'])} (rate {num(t['keyframe_rate'])}), updates {num(t['updates'])}",
        f"device time: teacher {num(t['teacher_seconds'], 1)} s (as the teachers took or charged it), "
        f"student {num(t['student_seconds'], 1)} s; "
        f"FLOPs (finished streams): teacher {num(t['teacher_gflops'], 1)} GFLOP, "
        f"student {num(t['student_gflops'], 1)} GFLOP",
        f"speed-up vs teacher on every frame: {times(t['speedup_cost_model'])} (paper's GPU cost model), "
        f"{times(t['speedup_measured'])} (measured on the students' devices), {times(t['speedup_flops'])} (FLOPs)",
        f"measured speed-up: the students' own time, each keyframe at {t['teacher_costs_here']}",
        _accuracy_line(t, "miou", "mIoU") + "; " + _accuracy_line(t, "miou_foreground", "foreground") + "; "
        + _accuracy_line(t, "frame_miou", "mean frame mIoU"),
        f"cost: {money(t['cost'], cur)} (teacher {money(t['teacher_cost'], cur)}, student "
        f"{money(t['student_cost'], cur)}{_pretrain_cost(t, cur)}), "
        f"{money(t['cost_per_camera_hour'], cur)} per camera-hour",
        *_pretrain_lines(t),
        f"prices: {report.prices.describe()}",
    ]


def _pretrain_cost(t: dict[str, Any], currency: str) -> str:
    return f", pretrain {money(t['pretrain_teacher_cost'], currency)}" if t["pretrain_checkpoints"] else ""


def _pretrain_lines(t: dict[str, Any]) -> list[str]:
    """The pretrain's teacher work, when streams began from pretrained checkpoints."""
    if not t["pretrain_checkpoints"]:
        return []
    n = t["pretrain_checkpoints"]
    return [f"pretrain: {num(n)} checkpoint{'s' if n > 1 else ''} the streams began from paid "
            f"{num(t['pretrain_teacher_frames'])} teacher labels ({num(t['pretrain_teacher_seconds'], 1)} s, "
            f"{num(t['pretrain_teacher_gflops'], 1)} GFLOP), counted in the cost and the speed-ups"]


def _accuracy_line(t: dict[str, Any], key: str, label: str) -> str:
    if not t[f"{key}_cameras"]:
        return f"{label} n/a (no scored frames; run with --evaluate)"
    return (f"{label} {num(t[f'{key}_mean'])} over {num(t[f'{key}_cameras'])} cameras (std {num(t[f'{key}_std'])}, "
            f"p10 {num(t[f'{key}_p10'])}, p90 {num(t[f'{key}_p90'])})")


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned text columns two spaces apart."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [list(headers), *rows]]


def camera_rows(report: Report, table: pa.Table) -> list[list[str]]:
    cur = report.prices.currency
    show_run = len(report.runs) > 1
    rows = []
    for r in table.to_pylist():
        row = [r["stream_id"], r["status"], num(r["frames"]), num(r["hours"], 4), num(r["keyframe_rate"]),
               times(r["speedup_measured"]), num(r["miou"]), money(r["cost"], cur),
               money(r["cost_per_camera_hour"], cur)]
        rows.append([*row, r["run"]] if show_run else row)
    return rows


def camera_headers(report: Report) -> list[str]:
    headers = ["STREAM", "STATUS", "FRAMES", "HOURS", "KEYFRAME RATE", "SPEED-UP (MEASURED)", "mIoU", "COST",
               "COST/CAM-HOUR"]
    return [*headers, "RUN"] if len(report.runs) > 1 else headers


def ranked(table: pa.Table, key: str, order: str, top: int) -> pa.Table:
    """The ``top`` rows by ``key`` (rows where it is missing excluded)."""
    present = table.filter(table.column(key).is_valid())
    return present.sort_by([(key, order), ("stream_id", "ascending")]).slice(0, top)


def render_table(report: Report, top: int = 10) -> str:
    """The whole report as text."""
    lines = ["odist report", *totals_lines(report), ""]
    lines += [f"most expensive cameras (top {top}, by cost):"]
    lines += grid(camera_headers(report), camera_rows(report, ranked(report.streams, "cost", "descending", top)))
    least = ranked(report.streams, "miou", "ascending", top)
    lines += ["", f"least accurate cameras (bottom {top}, by mIoU):"]
    lines += grid(camera_headers(report), camera_rows(report, least)) if least.num_rows else ["  (none scored)"]
    lines += _unfinished(report, top) + _timeline(report) + _counts(report)
    return "\n".join(lines) + "\n"


def unfinished(report: Report) -> pa.Table:
    """Streams that are not done: failed first, then partial, then empty, by stream id."""
    table = report.streams.filter(pc.not_equal(report.streams.column("status"), "done"))
    order = pc.index_in(table.column("status"), pa.array(["failed", "partial", "empty"]))
    return table.append_column("_order", order).sort_by([("_order", "ascending"), ("stream_id", "ascending"),
                                                         ("run", "ascending")]).drop_columns(["_order"])


def _unfinished(report: Report, top: int) -> list[str]:
    """Up to max(``top``, ``MIN_UNFINISHED_ROWS``) streams that are not done, with their status."""
    top = max(top, MIN_UNFINISHED_ROWS)
    table = unfinished(report)
    if not table.num_rows:
        return []
    rows = [[r["stream_id"], r["status"], _status_detail(r)] for r in table.slice(0, top).to_pylist()]
    more = [f"... and {table.num_rows - top:,} more (every stream is in the file outputs)"] \
        if table.num_rows > top else []
    return ["", f"streams not finished ({table.num_rows:,}):", *grid(["STREAM", "STATUS", "DETAIL"], rows), *more]


def _status_detail(row: dict[str, Any]) -> str:
    if row["status"] == "failed":
        return row["error"] or "unknown error"
    if row["status"] == "partial":
        return f"at frame {row['next_frame']}"
    return "nothing committed"


def _timeline(report: Report) -> list[str]:
    cur = report.prices.currency
    rows = [[r["bucket"], r["clock"], num(r["cameras"]), num(r["frames"]), num(r["keyframe_rate"]),
             money(r["cost"], cur)] for r in report.timeline.slice(0, MAX_TIMELINE_ROWS).to_pylist()]
    more = report.timeline.num_rows - len(rows)
    title = f"keyframe rate and cost per {report.unit} (stream clock: from each stream's start; utc: wall clock):"
    tail = [f"... {more} more {report.unit}s in the file outputs"] if more > 0 else []
    return ["", title, *grid(["BUCKET", "CLOCK", "CAMERAS", "FRAMES", "KEYFRAME RATE", "COST"], rows), *tail]


def _counts(report: Report) -> list[str]:
    """Objects per camera, minute and class: the mean per frame and the most in one frame."""
    if not report.counts.num_rows:
        return []
    rows = [[r["stream_id"], _minute(r["minute_start"], r["clock"]), r["class"], num(r["frames"]),
             num(r["objects_mean"], 2), num(r["objects_max"]), _share(r["pixels_mean"])]
            for r in report.counts.slice(0, MAX_TIMELINE_ROWS).to_pylist()]
    more = report.counts.num_rows - len(rows)
    tail = [f"... {more} more rows in the file outputs"] if more > 0 else []
    title = "objects per camera and minute (the student's masks: mean per frame, most in one frame, share of pixels):"
    return ["", title, *grid(["STREAM", "MINUTE", "CLASS", "FRAMES", "OBJECTS", "MOST", "PIXELS"], rows), *tail]


def _share(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"


def _minute(start: float, clock: str) -> str:
    if clock == "utc":
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(start))
    return f"+{int(start // 60)}m"
