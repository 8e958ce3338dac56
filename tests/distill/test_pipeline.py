"""One writer per stream: two ``odist distill`` processes of one stream into one run root, started together or 1 s
apart, on a local folder and on loopback S3. Exactly one runs, the other is refused in one line, and every commit
is the one attempt's. A SIGKILLed writer's stream is refused until its lease expires, then taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import odist
from odist.errors import LeaseError
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table

SIZE = ["--width", "64", "--height", "48", "--segment-frames", "8", "--quiet", "--set", "threads=1",
        "--set", "student.width=0.25"]


def distill_process(out: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "odist.cli", "distill", "synthetic:static_easy", "--out", out,
                             *SIZE, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def one_attempt(area: StreamArea) -> str:
    """The one attempt every commit, data object and the summary of ``area`` come from."""
    commits = area.commits()
    attempts = {c.records.rsplit("-", 1)[1].removesuffix(".parquet") for c in commits}
    attempts |= {c.checkpoint.rsplit("-", 1)[1].removesuffix(".pt") for c in commits[-1:]}
    assert len(attempts) == 1, attempts
    named = {key for c in commits for key in (c.records, c.masks, c.labels, c.checkpoint) if key}
    data = {k for k in area.store.list(area.prefix) if k.split("/")[-2] in ("records", "masks", "labels")}
    assert data <= named  # no orphan part of another attempt
    assert [c.sequence for c in commits] == list(range(len(commits)))
    return attempts.pop()


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["local", "s3"])
@pytest.mark.parametrize("gap_s", [0.0, 1.0])
def test_of_two_writers_of_one_stream_exactly_one_runs(backend, gap_s, tmp_path, request):
    out = str(tmp_path / "run") if backend == "local" else f"s3://{request.getfixturevalue('s3_bucket')}/run"
    first = distill_process(out, "--frames", "24", "--set", "distill.lr=0.01")
    time.sleep(gap_s)
    second = distill_process(out, "--frames", "24", "--set", "distill.lr=0.05")
    results = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    _, _, err = next(r for r in results if r[0] == 2)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "is being written by another odist" in lines[0] or "already has results" in lines[0], lines[0]
    area = StreamArea(open_store(out), "static_easy")
    attempt = one_attempt(area)
    assert area.summary()["frames"] == 24 and area.commits()[-1].next_frame_index == 24
    stream = json.loads(area.store.get(area.key("stream.json")))
    assert stream["attempt"] == attempt and stream["config"]["distill"]["lr"] in (0.01, 0.05)
    assert area.store.list(area.key("lease/")) == []


@pytest.mark.integration
def test_a_killed_writers_stream_is_taken_over_once_its_lease_expires(tmp_path):
    out = str(tmp_path / "run")
    lease = ["--set", "storage.lease_ttl_s=6", "--set", "storage.lease_heartbeat_s=0.5"]
    writer = distill_process(out, "--frames", "400", *lease)
    area = StreamArea(open_store(out), "static_easy")
    deadline = time.monotonic() + 240
    while StreamArea(open_store(out), "static_easy").last_commit() is None:
        assert writer.poll() is None and time.monotonic() < deadline, writer.communicate()
        time.sleep(0.1)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    run = {"resume": True,
           "overrides": ["source.width=64", "source.height=48", "source.frames=40", "storage.segment_frames=8",
                         "threads=1", "student.width=0.25", "storage.lease_ttl_s=6", "storage.lease_heartbeat_s=0.5"]}
    with pytest.raises(LeaseError, match="is being written by another odist"):
        odist.distill("synthetic:static_easy", out=out, **run)  # its lease lives on for up to 6 s
    while True:
        try:
            summary = odist.distill("synthetic:static_easy", out=out, **run)
            break
        except LeaseError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert summary["frames"] == 40
    frames = read_stream_table(area).column("frame_index").to_pylist()
    assert frames == list(range(40))  # every frame once: the killed attempt's, then the taker's
    assert area.store.list(area.key("lease/")) == []


PREPARED_THEN_LEARNING = """
import sys
from odist.config import load_config
from odist.distill.learning import make_optimizer, new_student
from odist.distill.pipeline import prepare_torch
config = load_config(overrides=["student.width=0.25", "threads=1"], environ={})
prepare_torch(config)
before = set(sys.modules)
make_optimizer(new_student(config), config.distill)
print(sorted(set(sys.modules) - before))
"""


@pytest.mark.integration
def test_a_stream_learns_without_importing_anything_once_torch_is_prepared():
    """``prepare_torch`` runs before the stream's lease is taken: a student's optimiser built under the lease
    imports no module (torch's first one would import ``torch._dynamo``, seconds that hold the GIL and keep
    the lease's heartbeat from renewing it)."""
    done = subprocess.run([sys.executable, "-c", PREPARED_THEN_LEARNING], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
