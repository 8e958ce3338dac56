"""A distill process killed mid-stream resumes from its last commit: every frame exactly once, same student."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from leases import expire_lease

from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table

FRAMES = 96
ARGS = ["synthetic:static_easy", "--width", "96", "--height", "64", "--frames", str(FRAMES), "--segment-frames",
        "8", "--evaluate", "--quiet", "--set", "student.width=0.25", "--set", "threads=1"]


def _distill(out, *extra):
    return [sys.executable, "-m", "odist.cli", "distill", *ARGS, "--out", str(out), *extra]


def _area(out):
    return StreamArea(open_store(str(out)), "static_easy")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    subprocess.run(_distill(out), check=True, capture_output=True)
    return out


def test_sigkill_then_resume_commits_every_frame_once_with_the_same_student(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    process = subprocess.Popen(_distill(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    commits = out / "streams" / "stream_id=static_easy" / "commits"
    deadline = time.monotonic() + 300
    while not (commits.is_dir() and len(list(commits.glob("*.json"))) >= 3):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no commits appeared"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = _area(out).last_commit().next_frame_index
    assert 0 < killed_at < FRAMES and _area(out).status()[0] == "partial"

    refused = subprocess.run(_distill(out, "--resume"), capture_output=True, text=True)
    assert refused.returncode == 2 and "is being written by another odist" in refused.stderr  # the killed one's lease
    expire_lease(_area(out))  # as waiting out its ttl (the default, 30 s) would
    resumed = subprocess.run(_distill(out, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr

    frames = read_stream_table(_area(out)).column("frame_index").to_pylist()
    assert frames == list(range(FRAMES))  # every frame exactly once
    # The resumed student continues from the checkpointed weights, optimiser and stride ladder:
    # its predictions after the kill equal those of a run that never stopped.
    mine, theirs = (decode_masks(read_stream_table(_area(o), "masks")) for o in (out, uninterrupted))
    assert all(np.array_equal(mine[i], theirs[i]) for i in range(killed_at, FRAMES))
    a, b = (read_stream_table(_area(o)) for o in (out, uninterrupted))
    for column in ("keyframe", "updates", "stride"):
        assert a.column(column).to_pylist() == b.column(column).to_pylist()
    assert _area(out).summary()["keyframes"] == _area(uninterrupted).summary()["keyframes"]


def test_resume_of_a_finished_stream_does_nothing(uninterrupted):
    before = [c.sequence for c in _area(uninterrupted).commits()]
    done = subprocess.run(_distill(uninterrupted, "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [c.sequence for c in _area(uninterrupted).commits()] == before


def test_a_resume_with_a_smaller_frames_is_refused_and_a_larger_one_continues(tmp_path):
    import odist
    from odist.errors import OutputError

    out = str(tmp_path / "run")
    tiny = ["source.width=48", "source.height=32", "student.width=0.25", "threads=1", "distill.max_updates=1",
            "storage.segment_frames=4"]

    def interrupt(progress):
        if progress.frames >= 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        odist.distill("synthetic:traffic", out, overrides=[*tiny, "source.frames=12"], on_progress=interrupt)
    assert _area_of(out).last_commit().next_frame_index == 8
    with pytest.raises(OutputError, match="has 8 frames committed, but this run's input ends after 6") as refused:
        odist.distill("synthetic:traffic", out, overrides=[*tiny, "source.frames=6"], resume=True)
    assert "--frames 8 or more" in refused.value.fix
    assert _area_of(out).summary() is None  # not marked done
    assert odist.distill("synthetic:traffic", out, overrides=[*tiny, "source.frames=12"], resume=True)["frames"] == 12


def _area_of(out):
    return StreamArea(open_store(out), "traffic")
