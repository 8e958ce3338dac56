"""Eight students share one CUDA GPU through ``odist run --student-gpus 0.125`` (skipped without a GPU).

Marked ``cuda``: ``bench/gpu_run.sh`` runs it on a GPU machine (``pytest -m cuda``).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

STUDENTS = 8
FRAMES = 12


def test_eight_students_at_an_eighth_of_a_gpu_each_distill_their_streams(tmp_path):
    manifest = tmp_path / "streams.jsonl"
    scenarios = ["traffic", "static_easy", "nonstationary", "edited"]
    manifest.write_text("".join(json.dumps({"uri": f"synthetic:{scenarios[i % 4]}", "stream_id": f"gpu{i}"}) + "\n"
                                for i in range(STUDENTS)))
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "odist.cli", "run", str(manifest), "--out", str(out), "--student-gpus", "0.125",
            "--width", "96", "--height", "64", "--frames", str(FRAMES), "--quiet", "--set", "device=cuda",
            "--set", "student.width=0.25", "--set", "threads=1"]
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=420, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads((out / "fleet_summary.json").read_text())
    assert summary["workers"] == STUDENTS  # the default pool: one GPU / 0.125 per worker
    assert summary["done"] == STUDENTS and summary["failed"] == 0
    store = open_store(str(out))
    for i in range(STUDENTS):
        area = StreamArea(store, f"gpu{i}")
        assert area.summary()["frames"] == FRAMES
        described = json.loads(store.get(area.key("stream.json")))
        assert described["config"]["device"] == "cuda"
        assert described["config"]["performance"]["gpu_memory_fraction"] == 0.125  # the worker's share
