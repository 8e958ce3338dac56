"""``--resume`` continues the stream it was given and nothing else: another input, decoded size, classes or
student architecture is refused in one line naming both values and the way out, and ``stream.json`` keeps
describing the committed frames (each attempt adds its own record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odist.cli import main
from odist.config import load_config
from odist.distill.pipeline import StreamOptions
from odist.fleet.student_actor import JobOptions, StudentWorker
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.video.manifest import StreamSpec

BASE = ["--frames", "8", "--segment-frames", "4", "--set", "student.width=0.25", "--set", "threads=1",
        "--set", "distill.max_updates=1", "--quiet"]
SIZE = ["--width", "48", "--height", "32"]


def distill(*args: str) -> int:
    return main(["distill", *args])


def killed_after_commit(out: Path, stream_id: str) -> StreamArea:
    """The stream as a driver killed after its last commit leaves it: committed frames, no summary."""
    area = StreamArea(open_store(str(out)), stream_id)
    area.store.delete(area.key("summary.json"))
    assert area.status()[0] == "partial"
    return area


@pytest.fixture
def partial(tmp_path):
    """A ``traffic`` stream of 48x32 frames, killed after its last commit; returns its run root."""
    out = tmp_path / "run"
    assert distill("synthetic:traffic", "--out", str(out), *SIZE, *BASE) == 0
    killed_after_commit(out, "traffic")
    return out


def stream_json(out: Path, stream_id: str = "traffic") -> dict:
    return json.loads((out / "streams" / f"stream_id={stream_id}" / "stream.json").read_text())


@pytest.mark.parametrize(("change", "before", "after"), [
    (["synthetic:traffic", "--width", "64", "--height", "48"], "size 48x32", "size 64x48"),
    (["synthetic:static_easy", "--stream-id", "traffic", *SIZE], "input synthetic:traffic",
     "input synthetic:static_easy"),
    (["synthetic:traffic", *SIZE, "--set", "classes=background,person"],
     "classes background, person, vehicle, bike", "classes background, person"),
    (["synthetic:traffic", *SIZE, "--set", "student.units=2"], "units=1", "units=2"),
    (["synthetic:traffic", *SIZE, "--seed", "3"], "synthetic seed 0", "synthetic seed 3"),
])
def test_a_resume_of_another_stream_is_refused_in_one_line(partial, capsys, change, before, after):
    manifest = stream_json(partial)
    capsys.readouterr()
    rc = distill(*change, "--out", str(partial), "--resume", *BASE)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert before in err and after in err and "--overwrite" in err and "--stream-id" in err, err
    assert stream_json(partial) == manifest  # what the committed frames are is kept
    area = StreamArea(open_store(str(partial)), "traffic")
    assert area.status()[0] == "partial" and area.failure() is None


def test_a_matching_resume_continues_and_adds_its_own_record(partial):
    first = stream_json(partial)
    assert distill("synthetic:traffic", "--out", str(partial), *SIZE, "--resume", *BASE[2:], "--frames", "16") == 0
    area = StreamArea(open_store(str(partial)), "traffic")
    assert area.status() == ("done", "16 frames")
    assert stream_json(partial) == first
    attempts = sorted((partial / "streams" / "stream_id=traffic" / "attempts").glob("*.json"))
    assert len(attempts) == 2 and first["attempt"] in {p.stem for p in attempts}


def test_overwrite_starts_the_stream_over_with_the_new_settings(partial):
    assert distill("synthetic:traffic", "--out", str(partial), "--width", "64", "--height", "48", "--overwrite",
                   *BASE) == 0
    assert stream_json(partial)["source"]["width"] == 64


def test_a_fleet_resubmission_of_another_input_fails_that_stream_only(partial):
    config = load_config(overrides=["student.width=0.25", "threads=1", "distill.max_updates=1"], environ={})
    worker = StudentWorker()
    job = JobOptions(str(partial), config, StreamOptions(width=64, height=48, frames=8, segment_frames=4))
    outcome = worker.process(StreamSpec(uri="synthetic:traffic", stream_id="traffic"), job)
    assert outcome.status == "failed" and "size 48x32" in outcome.error and "size 64x48" in outcome.error
    area = StreamArea(open_store(str(partial)), "traffic")
    assert area.last_commit().next_frame_index == 8  # its frames are untouched


def test_a_video_resumed_by_another_path_to_the_same_file_continues(tmp_path, monkeypatch):
    from odist.video.export import write_synthetic
    from odist.video.synthetic import SyntheticSource

    clip = write_synthetic(SyntheticSource("traffic", width=48, height=32, frames=12, seed=0), tmp_path / "clip")
    monkeypatch.chdir(clip.video.parent)
    out = tmp_path / "run"
    args = ["--segment-frames", "4", "--set", "student.width=0.25", "--set", "threads=1", "--quiet",
            "--teacher", "replay:" + str(clip.labels)]
    assert distill(clip.video.name, "--out", str(out), "--max-frames", "8", *args) == 0
    killed_after_commit(out, "video")
    monkeypatch.chdir(tmp_path)
    assert distill(str(clip.video), "--out", str(out), "--resume", *args) == 0
    assert StreamArea(open_store(str(out)), "video").status() == ("done", "12 frames")


def test_a_resume_of_a_finished_stream_with_another_input_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert distill("synthetic:traffic", "--out", str(out), *SIZE, *BASE) == 0
    capsys.readouterr()
    assert distill("synthetic:traffic", "--out", str(out), "--resume", "--width", "64", "--height", "48", *BASE) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "size 48x32" in err and "size 64x48" in err, err
    assert distill("synthetic:traffic", "--out", str(out), "--resume", *SIZE, *BASE) == 0  # the same: done as it is


def test_a_start_that_failed_before_its_first_commit_blocks_nothing(tmp_path, capsys):
    from odist.video.export import write_synthetic
    from odist.video.synthetic import SyntheticSource

    clip = write_synthetic(SyntheticSource("traffic", width=48, height=32, frames=6, seed=0), tmp_path / "clip")
    out = tmp_path / "run"
    assert distill(str(clip.video), "--out", str(out), "--teacher", "oracle", *BASE) == 2  # a video has no truth
    assert "has no ground truth" in capsys.readouterr().err
    area = StreamArea(open_store(str(out)), "video")
    assert area.failure() is not None and area.last_commit() is None
    assert distill(str(clip.video), "--out", str(out), "--teacher", f"replay:{clip.labels}", *BASE) == 0
    area = StreamArea(open_store(str(out)), "video")
    assert area.status() == ("done", "6 frames") and area.failure() is None
