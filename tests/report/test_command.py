"""``odist report`` on the command line, ``run_report`` and the Ray job script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from odist.cli import main
from odist.report.command import run_report
from odist.storage.objectstore import open_store

from .conftest import write_stream

ROOT = Path(__file__).resolve().parents[2]


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_table_to_stdout(real_run, capsys):
    assert main(["report", str(real_run), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("odist report\nfleet: 5 streams (2 done, 1 partial, 2 failed, 0 empty)")
    assert "most expensive cameras (top 1, by cost)" in out


def test_parquet_html_and_prices(real_run, tmp_path, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text("gpu_hour: 4.0\ncpu_hour: 0.0\n")
    out = tmp_path / "fleet.parquet"
    assert main(["report", str(real_run), "--format", "parquet", "--out", str(out), "--prices", str(prices)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "wrote " + str(tmp_path / "fleet-totals.parquet") in printed
    totals = pq.read_table(tmp_path / "fleet-totals.parquet").to_pylist()[0]
    assert totals["cost"] == pytest.approx(totals["teacher_seconds"] / 3600 * 4.0)
    assert main(["report", str(real_run), "--format", "html", "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_bad_inputs_are_one_line_errors(real_run, tmp_path, capsys):
    bad = tmp_path / "prices.yaml"
    bad.write_text("gpu_hour: free\n")
    assert main(["report", str(real_run), "--prices", str(bad)]) == 2
    assert "gpu_hour is 'free'" in error_line(capsys)
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "holds no odist streams" in error_line(capsys)
    assert main(["report", str(real_run), "--top", "0"]) == 2
    assert "--top 0" in error_line(capsys)


def test_run_report_default_out(real_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, written = run_report([str(real_run)], fmt="csv")
    assert written == [str(tmp_path / "odist-report.csv"), str(tmp_path / "odist-report-totals.csv"),
                       str(tmp_path / "odist-report-timeline.csv"), str(tmp_path / "odist-report-counts.csv")]
    assert text.startswith("fleet: 5 streams")


def test_ray_job_script(tmp_path):
    run = tmp_path / "run"
    write_stream(open_store(str(run)), "cam", 30)
    out = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "ray_jobs" / "cost_report_job.py"), str(run), "--format",
                             "html", "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    assert "plot-accuracy-vs-cost" in out.read_text()
    bad = subprocess.run([sys.executable, str(ROOT / "ray_jobs" / "cost_report_job.py"), str(tmp_path / "none")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "holds no odist streams" in bad.stderr
