"""A stream read from an archive in object storage: ``odist distill`` of an ``s3://`` video with ``replay:s3://``
labels gives the records of the same archive on local disk; a SIGKILLed run resumes from S3; a video replaced
between attempts is refused, and the same bytes put back are accepted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from leases import expire_lease
from s3archive import synth_in_bucket
from s3proxy import FaultProxy

from odist.cli import main
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table

FRAMES = 64
STREAM = "traffic-000"
TINY = ["--segment-frames", "4", "--evaluate", "--quiet", "--set", "student.width=0.25", "--set", "threads=1"]
TIMINGS = ("student_seconds", "teacher_seconds")


@pytest.fixture(scope="module")
def archive(tmp_path_factory, s3_endpoint) -> tuple[Path, str]:
    """``odist synth``'s archive (one traffic camera) on local disk and the same files in a bucket."""
    return synth_in_bucket(tmp_path_factory.mktemp("archive"), "odist-archive-in-s3", ["traffic"], FRAMES, 96, 64)


def _args(root: str, out: str, *extra: str) -> list[str]:
    return ["distill", f"{root}/{STREAM}/video.mp4", "--teacher", f"replay:{root}/{STREAM}/labels", "--out", out,
            "--stream-id", STREAM,
            *TINY, *extra]


def _records(out: str) -> list[dict]:
    return read_stream_table(StreamArea(open_store(out), STREAM)).drop(list(TIMINGS)).to_pylist()


@pytest.fixture(scope="module")
def local_run(archive, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("local") / "run")
    assert main(_args(str(archive[0]), out)) == 0
    return out


def test_an_s3_video_with_replay_s3_labels_gives_the_records_of_the_local_archive(archive, local_run, capsys):
    out = f"{archive[1].rsplit('/', 1)[0]}/runs/whole"
    assert main(_args(archive[1], out)) == 0
    assert "mIoU" in capsys.readouterr().out
    assert _records(out) == _records(local_run) and len(_records(out)) == FRAMES
    area = StreamArea(open_store(out), STREAM)
    summary = area.summary()
    assert summary["input_read"]["bytes"] >= (archive[0] / STREAM / "video.mp4").stat().st_size
    recorded = json.loads(area.store.get(area.key("stream.json")))["source"]["file"]
    assert recorded["bytes"] == (archive[0] / STREAM / "video.mp4").stat().st_size
    assert recorded["version"].startswith('ETag "')


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "odist.cli", *args]


def test_a_sigkilled_stream_resumes_from_s3_and_a_replaced_video_is_refused(archive, local_run):
    out = f"{archive[1].rsplit('/', 1)[0]}/runs/killed"
    store = open_store(out)
    process = subprocess.Popen(_cli(_args(archive[1], out)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(store.list(f"streams/stream_id={STREAM}/commits/")) < 2:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no commits appeared"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = StreamArea(store, STREAM).last_commit().next_frame_index
    assert 0 < killed_at < FRAMES

    held = subprocess.run(_cli(_args(archive[1], out, "--resume")), capture_output=True, text=True)
    assert held.returncode == 2 and "is being written by another odist" in held.stderr  # the killed one's lease
    expire_lease(StreamArea(store, STREAM))  # as waiting out its ttl (the default, 30 s) would

    video = open_store(archive[1])
    original = video.get(f"{STREAM}/video.mp4")
    video.put(f"{STREAM}/video.mp4", original[:-64])  # another object under the same key
    refused = subprocess.run(_cli(_args(archive[1], out, "--resume")), capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and f"was started with file {len(original)} bytes, ETag" in refused.stderr

    video.put(f"{STREAM}/video.mp4", original)  # the same bytes again: the same ETag, the same stream
    resumed = subprocess.run(_cli(_args(archive[1], out, "--resume")), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _records(out) == _records(local_run)  # every frame once, as the run that never stopped


def test_a_stream_read_through_drops_stalls_and_cuts_finishes_with_its_retries_counted(archive, local_run, tmp_path,
                                                                                      s3_endpoint, monkeypatch):
    upstream = urlparse(s3_endpoint)
    proxy = FaultProxy((upstream.hostname, upstream.port), stall_s=0.3, cut_bytes=5000)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("AWS_RETRY_MODE", "standard")
        monkeypatch.setattr("odist.storage.object_reader.BLOCK_BYTES", 16_000)  # many GETs for a small video
        monkeypatch.setattr("odist.storage.object_reader.READ_BYTES", 4_000)
        proxy.every(2, "cut", "drop", "stall", "slowdown")
        out = str(tmp_path / "run")  # the run root is local: only the video and labels cross the proxy
        assert main(_args(archive[1], out)) == 0
    finally:
        proxy.stop()
    assert min(proxy.faults[fault] for fault in ("cut", "drop", "stall", "slowdown")) >= 1
    assert _records(out) == _records(local_run)
    assert StreamArea(open_store(out), STREAM).summary()["input_read"]["retries"] >= 1
