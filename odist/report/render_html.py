"""The report as one self-contained HTML page: totals, three inline SVG plots, the camera tables and the
stream pages (sample frames with their masks, accuracy and stride over time).

No scripts and no external files: the page opens offline and prints as it shows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

import pyarrow.compute as pc

from odist._version import __version__
from odist.report.render_table import camera_headers, camera_rows, num, ranked, totals_lines, unfinished
from odist.report.report import Report
from odist.report.stream_page import CSS as STREAM_CSS
from odist.report.stream_page import stream_sections
from odist.report.svg import histogram, line_plot, scatter

STATUS_COLORS = {"done": "#4e79a7", "partial": "#f28e2b", "failed": "#e15759", "empty": "#9c9c9c"}
MAX_TIMELINE_ROWS = 200
MAX_UNFINISHED_ROWS = 200
CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1180px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }
th { background: #f3f3f3; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
.plot { border: 1px solid #ddd; }
.facts li { margin: 2px 0; }
"""


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], css_class: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def plots(report: Report) -> list[str]:
    """Cost per camera-hour histogram, keyframe rate over time (one plot per clock), accuracy vs cost."""
    streams, cur = report.streams, report.prices.currency
    per_hour = streams.column("cost_per_camera_hour").to_pylist()
    out = [histogram("plot-cost-histogram", "Cost per camera-hour", per_hour, f"{cur} per camera-hour")]
    for clock in ("stream", "utc"):
        part = report.timeline.filter(pc.equal(report.timeline.column("clock"), clock))
        if part.num_rows or (clock == "stream" and not report.timeline.num_rows):
            when = "from each stream's start" if clock == "stream" else "UTC"
            out.append(line_plot(f"plot-keyframe-rate-{clock}", f"Keyframe rate per {report.unit} ({when})",
                                 part.column("keyframe_rate").to_pylist(), part.column("bucket").to_pylist(),
                                 report.unit, "keyframes / frames", css_class="plot keyframe-rate"))
    rows = streams.to_pylist()
    out.append(scatter(
        "plot-accuracy-vs-cost", "Accuracy vs cost per camera", per_hour, [r["miou"] for r in rows],
        [STATUS_COLORS.get(r["status"], "#000") for r in rows],
        [f"{r['stream_id']} ({r['status']}): mIoU {num(r['miou'])}, {num(r['cost_per_camera_hour'])} {cur}/h"
         for r in rows], f"{cur} per camera-hour", "mIoU",
        legend=[(s, c) for s, c in STATUS_COLORS.items() if s in set(streams.column("status").to_pylist())]))
    return out


def render_html(report: Report, top: int = 10, stream_pages: int = 6) -> str:
    """The whole page, with the stream pages of up to ``stream_pages`` streams (the least accurate first)."""
    facts = "".join(f"<li>{escape(line)}</li>" for line in totals_lines(report))
    sections = [
        f"<h1>odist fleet report</h1><p>{escape(', '.join(report.runs))}<br>generated "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by odist {__version__}</p>",
        f'<ul class="facts">{facts}</ul>',
        '<div class="plots">' + "\n".join(plots(report)) + "</div>",
        f"<h2>Most expensive cameras (top {top}, by cost)</h2>",
        html_table(camera_headers(report), camera_rows(report, ranked(report.streams, "cost", "descending", top))),
        f"<h2>Least accurate cameras (bottom {top}, by mIoU)</h2>",
        html_table(camera_headers(report), camera_rows(report, ranked(report.streams, "miou", "ascending", top))),
        *stream_sections(report, stream_pages), *_unfinished(report), *_timeline(report),
    ]
    return html_document("odist fleet report", sections)


def html_document(title: str, sections: Sequence[str]) -> str:
    """A self-contained page of ``sections`` with the report's styles."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{CSS}{STREAM_CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")


def _unfinished(report: Report) -> list[str]:
    table = unfinished(report)
    rows = [[r["stream_id"], r["status"], r["error"] or f"{num(r['frames'])} frames committed", r["run"]]
            for r in table.slice(0, MAX_UNFINISHED_ROWS).to_pylist()]
    more = f"<p>... and {table.num_rows - len(rows):,} more (every stream is in the file outputs)</p>" \
        if table.num_rows > len(rows) else ""
    title = f"<h2>Streams not finished ({table.num_rows:,})</h2>"
    return [title, html_table(["STREAM", "STATUS", "DETAIL", "RUN"], rows), more] if rows else []


def _timeline(report: Report) -> list[str]:
    cur = report.prices.currency
    part = report.timeline.slice(0, MAX_TIMELINE_ROWS)
    rows = [[r["bucket"], r["clock"], num(r["cameras"]), num(r["frames"]), num(r["keyframe_rate"]),
             f"{num(r['cost'], 4)} {cur}"] for r in part.to_pylist()]
    return [f"<h2>Keyframe rate and cost per {report.unit}</h2>",
            html_table(["BUCKET", "CLOCK", "CAMERAS", "FRAMES", "KEYFRAME RATE", "COST"], rows)]
