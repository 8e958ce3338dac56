"""Every benchmark's tiny check (bench/README.md) runs to the end and writes its JSON.

The benchmarks measure, they assert no timings; these runs only make sure a change to the package has not
broken a script (the docs' benchmark tables come from their results).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fast_teachers import FAST_MASKRCNN_OPTIONS
from netutil import free_port

BENCH = Path(__file__).resolve().parents[2] / "bench"


TINY_CHECKS = {
    "accuracy_vs_cost": ["--width", "128", "--height", "72", "--frames", "40", "--scenarios", "static_easy",
                         "--no-progress", "--threads", "1"],
    "frame_cost": ["--width", "160", "--height", "90", "--repeats", "1", "--warmup", "0", "--widths", "0.5",
                   "--archs", "v1", "--threads", "1", "--teacher-options", FAST_MASKRCNN_OPTIONS],
    "student_cpu": ["--sizes", "96x64", "--repeats", "1", "--warmup", "0", "--train-steps", "1", "--peak-size", "256",
                    "--variants", "eager", "channels_last+bf16", "freeze", "threads1"],
    "normalisation": ["--width", "64", "--height", "48", "--frames", "12", "--scenarios", "traffic", "--seeds", "0",
                      "--variants", "frame", "keyframe", "--precisions", "fp32", "--clip-width", "64",
                      "--clip-frames", "8", "--sizes", "96x64", "--repeats", "1"],
    "student_efficiency": ["--size", "96x64", "--frames", "8", "--repeats", "1", "--peak-size", "256"],
    "storage_throughput": ["--width", "128", "--height", "72", "--frames", "40", "--segment-frames", "16",
                           "--checkpoint-mb", "1", "--scenarios", "static_easy"],
    "fleet_throughput": ["--streams", "2", "--frames", "8", "--prewarm", "on", "--many", "4"],
    "live_capacity": ["--cameras", "1", "--width", "160", "--height", "90", "--seconds", "5", "--warmup", "3",
                      "--student-width", "0.25"],
    "report_scale": ["--streams", "100", "--workers", "2"],
    "keyframe_policy": ["--width", "96", "--height", "64", "--frames", "24", "--scenarios", "edited", "--seeds", "0",
                        "--policies", "paper", "default", "--jobs", "1"],
    "student_size": ["--width", "96", "--height", "64", "--frames", "24", "--scenarios", "edited", "--seeds", "0",
                     "--students", "x0.5", "x1.0", "--jobs", "1"],
    "scene_cuts": ["--width", "96", "--height", "64", "--frames", "60", "--seeds", "0"],
    "warm_start": ["--width", "96", "--height", "64", "--frames", "8", "--history-frames", "16", "--scenarios",
                   "traffic", "--seeds", "0", "--history-seeds", "100", "--epochs", "1", "--variants",
                   "rung1:distill.warm_start_rung=1"],
    "teacher_pool_load": ["--replicas", "1", "--clients", "1", "2", "--variants", "actor-pool", "serve-adaptive",
                          "--warmup", "0.5", "--window", "1", "--a", "0.02", "--b", "0.002", "--scale-seconds", "0"],
    "driver_scale": ["--streams", "2", "--frames", "2"],
    "stream_overhead": ["--streams", "3", "--frames", "2"],
    "archive_read": ["--scenarios", "static_easy", "--frames", "20", "--width", "96", "--height", "64",
                     "--repeats", "1"],
}


@pytest.mark.parametrize("script", sorted(TINY_CHECKS))
def test_tiny_check_runs_and_writes_its_results(script, tmp_path):
    out = tmp_path / "results" / f"{script}.json"
    args = list(TINY_CHECKS[script])
    if script == "live_capacity":
        args += ["--base-port", str(free_port(socket.SOCK_DGRAM))]
    if script == "storage_throughput":
        args += ["--local-dir", str(tmp_path / "local")]
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    done = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), *args, "--out", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    payload = json.loads(out.read_text())
    assert payload, f"{script} wrote an empty result"
    assert f"JSON: {out}" in done.stdout
