"""The results ``odist run`` ends with, and its exit codes for usage errors (no Ray started)."""

from __future__ import annotations

import pytest

from odist.cli import main
from odist.fleet.results import results_lines


def _row(sid: str, miou: float | None, speedup: float, evaluated: bool = True) -> dict:
    return {"stream_id": sid, "status": "done", "evaluated": evaluated, "miou": miou,
            "miou_foreground": None if miou is None else miou / 2, "speedup_cost_model": speedup,
            "speedup_measured": speedup / 10, "teacher_cost_here": "teacher 3 s/frame on cpu (cached in c.json)"}


def test_results_show_the_fleet_spread_and_the_worst_streams_first():
    rows = [_row("a", 0.8, 10.0), _row("b", 0.4, 14.0), _row("c", 0.6, 12.0),
            {"stream_id": "broken", "status": "failed", "error": "not a video"}]
    lines = results_lines(rows, "runs/fleet", worst=2)
    text = "\n".join(lines)
    assert lines[0] == "results of the 3 stream(s) finished by this job (mean and spread over streams):"
    assert "  mIoU: mean 0.600, std 0.163, p10 0.440, p90 0.760" in lines
    assert ("  speed-up vs teacher on every frame (paper's GPU cost model): mean 12.0x, std 1.6, p10 10.4x, "
            "p90 13.6x") in lines
    assert "    teacher charged at: teacher 3 s/frame on cpu (cached in c.json) (3 streams)" in lines
    table = [line.split() for line in lines[lines.index(next(x for x in lines if "STREAM" in x)) + 1:-2]]
    assert [cells[:2] for cells in table] == [["b", "0.400"], ["c", "0.600"]]
    assert "odist render runs/fleet --stream b --out b.mp4" in text


def test_results_without_evaluation_say_how_to_score():
    text = "\n".join(results_lines([_row("a", None, 9.0, evaluated=False)], "runs/r"))
    assert "run with --evaluate" in text and "(measured on the students' devices): mean 0.9x" in text
    assert "least accurate" not in text


def test_a_job_that_finished_nothing_shows_no_results():
    assert results_lines([{"stream_id": "x", "status": "failed"}], "runs/r") == []


@pytest.mark.parametrize("argv", [["run"], ["run", "synthetic:traffic"],
                                  ["run", "x", "--out", "o", "--workers", "two"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "usage: odist run" in capsys.readouterr().err


def test_an_input_error_exits_2_before_ray_starts(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("odist: error: ") and "missing.jsonl" in err
