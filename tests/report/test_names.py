"""One meaning per name: ``mIoU`` is a stream's IoU from its accumulated confusion matrix in ``summary.json``,
``odist run``'s results and every output of ``odist report``; the mean of per-frame scores is ``frame_miou``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from odist.cli import main
from odist.fleet.results import results_lines, stream_scores
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table

STREAMS = {"cam-a": "synthetic:traffic", "cam-b": "synthetic:nonstationary"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("names") / "run"
    for sid, uri in STREAMS.items():
        assert main(["distill", uri, "--out", str(out), "--stream-id", sid, "--width", "64", "--height", "48",
                     "--frames", "24", "--evaluate", "--quiet", "--set", "student.width=0.25",
                     "--set", "threads=1"]) == 0
    return out


def test_the_run_results_and_every_report_output_give_the_same_miou(run, tmp_path, capsys):
    store = open_store(str(run))
    summaries = {sid: StreamArea(store, sid).summary() for sid in STREAMS}
    lines = results_lines([{"stream_id": sid, **stream_scores(s)} for sid, s in summaries.items()], str(run))
    fleet_mean = float(next(line for line in lines if line.strip().startswith("mIoU:")).split("mean ")[1].split(",")[0])
    assert fleet_mean == pytest.approx(np.mean([s["miou"] for s in summaries.values()]), abs=5e-4)

    assert main(["report", str(run), "--format", "csv", "--out", str(tmp_path / "r.csv")]) == 0
    rows = {row["stream_id"]: row for row in csv.DictReader((tmp_path / "r.csv").open())}
    assert main(["report", str(run), "--format", "parquet", "--out", str(tmp_path / "r.parquet")]) == 0
    parquet = {row["stream_id"]: row for row in pq.read_table(tmp_path / "r.parquet").to_pylist()}
    for sid, summary in summaries.items():
        frames = read_stream_table(StreamArea(store, sid)).column("miou").to_numpy()
        assert float(rows[sid]["miou"]) == pytest.approx(summary["miou"]) == parquet[sid]["miou"]
        assert float(rows[sid]["frame_miou"]) == pytest.approx(float(np.nanmean(frames)))
        assert summary["miou"] != pytest.approx(float(np.nanmean(frames)), abs=1e-6)  # two figures, two names

    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    table = capsys.readouterr().out
    mean = np.mean([s["miou"] for s in summaries.values()])
    assert f"mIoU {mean:.3f} over 2 cameras" in table and "mean frame mIoU" in table


def test_objects_per_camera_minute_and_class_are_the_records_averaged(run, tmp_path):
    import odist

    report = odist.report(str(run))
    counts = {(r["stream_id"], r["class"]): r for r in report.counts.to_pylist()}
    store = open_store(str(run))
    for sid in STREAMS:
        records = read_stream_table(StreamArea(store, sid)).to_pylist()
        for class_id, name in enumerate(["person", "vehicle", "bike"], start=1):
            row = counts[(sid, name)]
            objects = [r["class_regions"][class_id] for r in records]
            assert (row["clock"], row["minute_start"], row["frames"]) == ("stream", 0.0, len(records))
            assert row["objects_mean"] == pytest.approx(np.mean(objects)) and row["objects_max"] == max(objects)
            assert row["pixels_mean"] == pytest.approx(np.mean([r["class_pixels"][class_id] for r in records]))
    assert not any(r["class"] == "background" for r in report.counts.to_pylist())
