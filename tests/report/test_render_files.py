"""Parquet and CSV outputs: one row per stream, a one-row totals file and the timeline file."""

from __future__ import annotations

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from odist.errors import OutputError
from odist.report import build_report
from odist.report.figures import STREAM_COLUMNS
from odist.report.render_files import sibling, write_files
from odist.report.timeline import TIMELINE_COLUMNS


@pytest.fixture(scope="module")
def report(real_run):
    return build_report([str(real_run)])


def test_sibling_names():
    assert sibling("out/report.parquet", "totals") == "out/report-totals.parquet"
    assert sibling("report.csv", "timeline") == "report-timeline.csv"
    assert sibling("s3://b/p/r.parquet", "totals") == "s3://b/p/r-totals.parquet"
    assert sibling("noext", "totals") == "noext-totals"


def test_parquet_outputs(report, tmp_path):
    out = tmp_path / "reports" / "fleet.parquet"
    written = write_files(report, str(out), "parquet")
    assert [p.rsplit("/", 1)[-1] for p in written] == ["fleet.parquet", "fleet-totals.parquet",
                                                       "fleet-timeline.parquet", "fleet-counts.parquet"]
    streams = pq.read_table(out)
    assert tuple(streams.column_names) == STREAM_COLUMNS
    rows = {r["stream_id"]: r for r in streams.to_pylist()}
    assert rows["cam-d"]["status"] == "failed" and rows["cam-d"]["error"] == "boom: decoder crashed"
    assert rows["cam-c"]["status"] == "partial" and rows["cam-c"]["miou"] is None
    totals = pq.read_table(tmp_path / "reports" / "fleet-totals.parquet").to_pylist()
    assert len(totals) == 1 and totals[0]["frames"] == 60 == sum(r["frames"] for r in rows.values())
    assert totals[0]["cost"] == pytest.approx(sum(r["cost"] for r in rows.values()))
    assert totals[0]["currency"] == "USD"
    timeline = pq.read_table(tmp_path / "reports" / "fleet-timeline.parquet")
    assert tuple(timeline.column_names) == TIMELINE_COLUMNS


def test_csv_outputs(report, tmp_path):
    out = tmp_path / "fleet.csv"
    write_files(report, str(out), "csv")
    header = out.read_text().splitlines()[0]
    assert header.split(",")[:5] == ['"run"', '"stream_id"', '"status"', '"error"', '"frames"']
    streams = pacsv.read_csv(out)
    assert streams.num_rows == 5
    assert dict(zip(streams.column("stream_id").to_pylist(), streams.column("frames").to_pylist(), strict=True)) == {
        "broken": 0, "cam-a": 20, "cam-b": 20, "cam-c": 12, "cam-d": 8}
    totals = pacsv.read_csv(tmp_path / "fleet-totals.csv")
    assert totals.num_rows == 1 and totals.column("streams").to_pylist() == [5]


def test_files_on_s3(report, s3_bucket):
    import boto3

    written = write_files(report, f"s3://{s3_bucket}/reports/fleet.parquet", "parquet")
    assert written[1] == f"s3://{s3_bucket}/reports/fleet-totals.parquet"
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert sorted(keys) == ["reports/fleet-counts.parquet", "reports/fleet-timeline.parquet",
                            "reports/fleet-totals.parquet", "reports/fleet.parquet"]


def test_bad_outputs(report, tmp_path):
    with pytest.raises(OutputError, match="unknown file format"):
        write_files(report, str(tmp_path / "x.json"), "json")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_files(report, str(tmp_path / "file" / "x.parquet"), "parquet")
