"""``collect``: every committed record aggregated per stream, statuses from the stream documents, bad runs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from odist.errors import StorageError
from odist.report.collect import collect
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store

from .conftest import committed_records, write_stream


@pytest.fixture(scope="module")
def collected(real_run):
    return collect([str(real_run)])


def rows_by_id(table: pa.Table) -> dict[str, dict]:
    return {row["stream_id"]: row for row in table.to_pylist()}


def test_every_stream_is_there_with_its_status(collected, real_run):
    rows = rows_by_id(collected.streams)
    assert {sid: row["status"] for sid, row in rows.items()} == {
        "cam-a": "done", "cam-b": "done", "cam-c": "partial", "cam-d": "failed", "broken": "failed"}
    assert rows["cam-d"]["error"] == "boom: decoder crashed"
    assert rows["broken"]["error"] == "boom: not a video"
    assert rows["broken"]["frames"] is None
    assert collected.runs == [str(real_run)]


def test_per_stream_aggregates_match_the_parquet_files(collected, real_run):
    truth = committed_records(real_run)
    rows = rows_by_id(collected.streams)
    assert set(truth) == {"cam-a", "cam-b", "cam-c", "cam-d"}
    for sid, rec in truth.items():
        row = rows[sid]
        assert row["frames"] == len(rec["frame_index"]) == {"cam-c": 12, "cam-d": 8}.get(sid, 20)
        assert row["last_frame"] == rec["frame_index"].max()
        assert row["keyframes"] == int(rec["keyframe"].sum())
        assert row["updates"] == int(rec["updates"].sum())
        assert row["student_seconds"] == pytest.approx(rec["student_seconds"].astype(np.float64).sum())
        assert row["teacher_seconds"] == pytest.approx(rec["teacher_seconds"].astype(np.float64).sum())
        scored = rec["miou"][np.isfinite(rec["miou"])]
        assert row["evaluated_frames"] == scored.size
        if scored.size:  # the mean of the frames' scores, by its own name
            assert row["frame_miou"] == pytest.approx(scored.astype(np.float64).mean())
        else:
            assert row["frame_miou"] is None
        summary = StreamArea(open_store(str(real_run)), sid).summary()
        assert row["miou"] == (None if summary is None else summary["miou"])  # the stream's, as summary.json


def test_documents_give_flops_device_and_cost_model(collected, real_run):
    rows = rows_by_id(collected.streams)
    summary = json.loads((real_run / "streams/stream_id=cam-a/summary.json").read_text())
    ledger = summary["ledger"]
    assert rows["cam-a"]["teacher_gflops"] == pytest.approx(ledger["teacher_gflops"])
    assert rows["cam-a"]["student_gflops"] == pytest.approx(
        ledger["student_inference_gflops"] + ledger["student_update_gflops"])
    assert rows["cam-a"]["config_device"] == "cpu"
    assert rows["cam-a"]["cost_teacher_ms"] == 300.0
    assert rows["cam-c"]["teacher_gflops"] is None  # no summary: FLOPs unknown
    assert rows["cam-a"]["dropped_frames"] == 0


def test_per_second_rows_sum_to_the_stream(collected):
    seconds = collected.seconds
    assert set(seconds.column_names) >= {"run", "stream_id", "second", "frames", "keyframes", "teacher_seconds"}
    assert pa.compute.sum(seconds.column("frames")).as_py() == 20 + 20 + 12 + 8


def test_several_runs_merge_and_keep_their_run(real_run, tmp_path):
    other = tmp_path / "other"
    write_stream(open_store(str(other)), "cam-a", 40)
    got = collect([str(real_run), str(other)])
    assert got.streams.num_rows == 6
    runs = {(r["run"], r["stream_id"]) for r in got.streams.to_pylist()}
    assert (str(other), "cam-a") in runs and (str(real_run), "cam-a") in runs


def test_empty_and_foreign_roots_are_clear_errors(tmp_path):
    with pytest.raises(StorageError, match="holds no odist streams"):
        collect([str(tmp_path / "nothing")])
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("hello")
    with pytest.raises(StorageError, match="holds no odist streams") as info:
        collect([str(tmp_path / "foreign")])
    assert "--out of an odist run" in info.value.fix


def test_a_newer_summary_schema_is_refused(tmp_path):
    store = open_store(str(tmp_path / "run"))
    write_stream(store, "cam", 10, summary={"schema_version": 99})
    with pytest.raises(StorageError, match="schema version 99") as info:
        collect([str(tmp_path / "run")])
    assert "upgrade odist" in info.value.fix


def test_newer_records_metadata_is_refused(tmp_path):
    store = open_store(str(tmp_path / "run"))
    write_stream(store, "cam", 10)
    path = next((tmp_path / "run").rglob("records/*.parquet"))
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({"odist_schema_version": "2"}), path)
    with pytest.raises(StorageError, match="schema version 2") as info:
        collect([str(tmp_path / "run")])
    assert "upgrade odist" in info.value.fix


def test_a_newer_commit_record_is_refused(tmp_path):
    store = open_store(str(tmp_path / "run"))
    write_stream(store, "cam", 10)
    key = StreamArea.prefix_of("cam") + "commits/000000.json"
    commit = json.loads(store.get(key))
    store.put(key, json.dumps({**commit, "schema_version": 7}).encode())
    with pytest.raises(StorageError, match="schema version 7"):
        collect([str(tmp_path / "run")])


def test_unreadable_records_are_a_clear_error(tmp_path):
    store = open_store(str(tmp_path / "run"))
    write_stream(store, "cam", 10)
    next((tmp_path / "run").rglob("records/*.parquet")).write_bytes(b"PAR1 not parquet")
    with pytest.raises(StorageError, match="not readable Parquet"):
        collect([str(tmp_path / "run")])


def test_reads_a_run_on_s3(s3_bucket):
    uri = f"s3://{s3_bucket}/runs/r1"
    store = open_store(uri)
    columns = write_stream(store, "cam-s3", 70, segment=32)
    write_stream(store, "cam-partial", 20, finish=False)
    rows = rows_by_id(collect([uri]).streams)
    assert rows["cam-s3"]["status"] == "done" and rows["cam-partial"]["status"] == "partial"
    assert rows["cam-s3"]["frames"] == 70
    assert rows["cam-s3"]["keyframes"] == int(columns["keyframe"].sum())
