"""The report as files: one row per stream in ``OUT``, the fleet totals in ``OUT-totals``, the time buckets
in ``OUT-timeline``, the objects per camera, minute and class in ``OUT-counts`` (each Parquet or CSV, the
suffix of ``OUT`` kept). ``OUT`` may be a path or a
``file://`` / ``s3://`` URI; every file is written atomically.
"""

from __future__ import annotations

import io
import posixpath
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from odist.errors import OutputError, StorageError
from odist.report.report import Report
from odist.storage.objectstore import open_store

FORMATS = ("parquet", "csv")


def sibling(out: str, tag: str) -> str:
    """``runs/report.parquet`` -> ``runs/report-totals.parquet`` (for ``tag`` = ``totals``)."""
    head, name = posixpath.split(out)
    stem, dot, ext = name.rpartition(".")
    named = f"{stem}-{tag}.{ext}" if dot and stem else f"{name}-{tag}"
    return posixpath.join(head, named) if head else named


def totals_table(report: Report) -> pa.Table:
    """The fleet totals as a one-row table (columns as in ``Report.totals``)."""
    return pa.Table.from_pylist([report.totals])


def table_bytes(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink, compression="zstd")
    else:
        pacsv.write_csv(table, sink)
    return sink.getvalue()


def write_output(out: str, data: bytes) -> str:
    """Write ``data`` at the path or URI ``out``; returns where it went."""
    parsed = urlparse(out)
    if parsed.scheme in ("s3", "file"):
        parent, name = posixpath.split(parsed.path.rstrip("/"))
        root = f"{parsed.scheme}://{parsed.netloc}{parent}"
    else:
        parent, name = posixpath.split(out)
        root = parent or "."
    if not name:
        raise OutputError(f"output {out!r} names no file", "pass a file path, e.g. --out report.parquet")
    try:
        store = open_store(root)
        store.put(name, data)
    except StorageError as exc:
        raise OutputError(f"cannot write {out}: {exc.what}", exc.fix or "check the folder exists and is writable") \
            from None
    return store.url(name)


def write_files(report: Report, out: str, fmt: str) -> list[str]:
    """Write the per-stream, totals, timeline and counts tables as ``fmt``; returns the four locations."""
    if fmt not in FORMATS:
        raise OutputError(f"unknown file format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    return [write_output(out, table_bytes(report.streams, fmt)),
            write_output(sibling(out, "totals"), table_bytes(totals_table(report), fmt)),
            write_output(sibling(out, "timeline"), table_bytes(report.timeline, fmt)),
            write_output(sibling(out, "counts"), table_bytes(report.counts, fmt))]
