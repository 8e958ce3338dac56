"""``odist live`` and ``odist publish`` as a user runs them: a real camera, then SIGTERM commits and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fast_teachers import FAST_MASKRCNN

from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store


def test_sigterm_commits_every_camera_and_exits_0(camera, tmp_path):
    publisher = camera("udp")
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(f"- id: street\n  url: {publisher.url}\n")
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "odist.cli", "live", str(cameras), "--out", str(out), "--teacher", FAST_MASKRCNN,
         "--set", "teacher.weights=random", "--set", "student.width=0.25", "--set", "threads=1",
         "--commit-every", "2", "--status-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while _frames(out / "live_status.json") < 5:
            assert process.poll() is None, process.stdout.read()
            if time.monotonic() > deadline:
                pytest.fail("odist live processed no frames in 120 s")
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopped 1 camera(s)" in output and "CAMERA" in output and "street" in output
    area = StreamArea(open_store(str(out)), "street")
    assert area.status()[0] == "done" and area.summary()["live"] is True
    assert area.last_commit().next_frame_index >= 5


def test_a_bad_camera_list_is_one_line_and_exit_2(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("not: a list\n")
    result = subprocess.run([sys.executable, "-m", "odist.cli", "live", str(cameras), "--out", str(tmp_path / "r"),
                             "--teacher", "maskrcnn", "--set", "teacher.weights=random"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "non-empty YAML list" in result.stderr


def _frames(path) -> int:
    try:
        return sum(camera["frames"] for camera in json.loads(path.read_text())["cameras"])
    except (OSError, ValueError, KeyError):
        return 0
