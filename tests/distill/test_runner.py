"""The measured speed-up of a stream whose teacher did not run on the student's device (the oracle charges the
paper's GPU figure): each keyframe is charged the teacher's cost on the student's device, measured once and
cached, and summary.json says which figure it used and where it came from."""

from __future__ import annotations

import pytest

from odist.distill.api import distill
from odist.models.teachers import device_cost

SECONDS_HERE = 4.0  # what the "measurement" finds: not the oracle's charged 0.3 s
SMALL = ["student.width=0.25", "threads=1", "teacher.device_ms=null"]


@pytest.fixture
def measurements(tmp_path, monkeypatch) -> list[tuple]:
    monkeypatch.setenv("ODIST_CACHE", str(tmp_path / "cache"))
    calls: list[tuple] = []

    def measure(teacher, classes, device, height, width, **options):
        calls.append((device, height, width))
        return SECONDS_HERE

    monkeypatch.setattr(device_cost, "measure_seconds_per_frame", measure)
    return calls


def run(out, stream_id: str) -> dict:
    return distill("synthetic:static_easy", str(out), stream_id=stream_id,
                   overrides=[*SMALL, "source.width=64", "source.height=48", "source.frames=16"])


def test_measured_speedup_charges_keyframes_at_the_devices_teacher_cost(measurements, tmp_path):
    summary = run(tmp_path / "run", "a")
    ledger, here = summary["ledger"], summary["teacher_cost_here"]
    assert measurements == [("cpu", 48, 64)]
    assert (here["origin"], here["seconds_per_frame"], here["device"]) == ("measured", SECONDS_HERE, "cpu")
    assert here["charged_seconds_per_frame"] == pytest.approx(0.3)  # the oracle's charge, kept apart
    assert here["file"].startswith(str(tmp_path / "cache")) and "cached in" in here["description"]
    student = ledger["student_inference_seconds"] + ledger["student_update_seconds"]
    expected = ledger["frames"] * SECONDS_HERE / (student + ledger["teacher_frames"] * SECONDS_HERE)
    assert summary["speedup_measured"] == pytest.approx(expected)
    charged = ledger["frames"] * 0.3 / (student + ledger["teacher_seconds"])
    assert summary["speedup_measured"] != pytest.approx(charged)


def test_a_second_stream_reads_the_cached_cost(measurements, tmp_path):
    first = run(tmp_path / "run", "a")
    second = run(tmp_path / "run", "b")
    assert len(measurements) == 1
    assert (first["teacher_cost_here"]["origin"], second["teacher_cost_here"]["origin"]) == ("measured", "cached")
    assert second["teacher_cost_here"]["seconds_per_frame"] == SECONDS_HERE
    assert second["teacher_cost_here"]["file"] == first["teacher_cost_here"]["file"]
    assert second["teacher_cost_here"]["description"] == first["teacher_cost_here"]["description"]  # one group
