"""The ``odist report`` command, and ``run_report``, the same work as a library call."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from odist.errors import ConfigError

FORMATS = ("table", "parquet", "csv", "html")
BUCKETS = ("auto", "second", "minute", "hour", "day")


def add_report_command(commands: argparse._SubParsersAction) -> None:
    """Register ``odist report`` on the CLI's subcommands."""
    p = commands.add_parser(
        "report", help="what a fleet cost and what it bought, across one or more runs",
        description="Read every committed record of every stream under the run roots (merged into one fleet) "
                    "and report video hours, keyframe rate, updates, teacher and student device time and FLOPs, "
                    "speed-ups against the teacher on every frame, mIoU and its spread, dropped frames, and "
                    "money at the prices given; partial and failed streams are listed with their status.")
    p.add_argument("runs", nargs="+", metavar="RUN_URI", help="run root: a folder, file:// or s3:// URI")
    p.add_argument("--prices", default=None, metavar="FILE",
                   help="YAML/JSON price file (default: GPU-hour 2.50 USD, CPU-hour 0.05 USD)")
    p.add_argument("--format", default="table", choices=FORMATS,
                   help="table (terminal), parquet or csv (per-stream rows, plus -totals and -timeline files), "
                        "or html (one self-contained page with plots)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="where to write (path or URI; default: stdout for table, odist-report.FORMAT otherwise)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="cameras in the ranked tables (default 10)")
    p.add_argument("--stream-pages", type=int, default=6, metavar="N",
                   help="html: stream pages (sample frames with masks, accuracy and stride over time) for the N "
                        "least accurate streams (default 6; 0 for none)")
    p.add_argument("--bucket", default="auto", choices=BUCKETS,
                   help="time bucket of keyframe rate and cost (default auto: about 24 buckets over the longest clock)")
    p.set_defaults(handler=_run_report)


def run_report(runs: Sequence[str], *, prices: str | None = None, fmt: str = "table", out: str | None = None,
               top: int = 10, bucket: str = "auto", stream_pages: int = 6) -> tuple[str, list[str]]:
    """Build the report and render it; returns (text for the terminal, locations written)."""
    from odist.report.prices import load_prices
    from odist.report.render_files import write_files, write_output
    from odist.report.render_html import render_html
    from odist.report.render_table import render_table, totals_lines
    from odist.report.report import build_report

    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if top < 1:
        raise ConfigError(f"--top {top} is not positive", "pass 1 or more")
    if stream_pages < 0:
        raise ConfigError(f"--stream-pages {stream_pages} is negative", "pass 0 or more")
    report = build_report(runs, load_prices(prices), bucket)
    if fmt == "table":
        text = render_table(report, top)
        return text, [write_output(out, text.encode())] if out else []
    target = out or f"odist-report.{fmt}"
    if fmt == "html":
        written = [write_output(target, render_html(report, top, stream_pages).encode())]
    else:
        written = write_files(report, target, fmt)
    return "\n".join(totals_lines(report)) + "\n", written


def _run_report(args: argparse.Namespace) -> int:
    text, written = run_report(args.runs, prices=args.prices, fmt=args.format, out=args.out, top=args.top,
                               bucket=args.bucket, stream_pages=args.stream_pages)
    print(text, end="")
    for location in written:
        print(f"wrote {location}")
    return 0
