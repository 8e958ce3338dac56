"""``bench/gpu_run.py --device cpu``: the GPU run's dry run goes through every step on the CPU, so a GPU minute is
never spent on a typo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
STEPS = ["install", "versions", "frame_cost-fp32", "frame_cost-channels_last", "frame_cost-bf16",
         "frame_cost-bf16-channels_last", "gpu_pipeline", "cuda_tests"]


def test_the_dry_run_passes_every_step_and_writes_its_results(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "OUT")}
    done = subprocess.run([sys.executable, str(BENCH / "gpu_run.py"), "--device", "cpu", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    summary = json.loads((tmp_path / "summary.json").read_text())
    failed = {s["name"]: Path(s["log"]).read_text()[-2000:] for s in summary["steps"] if s["status"] != "passed"}
    assert done.returncode == 0 and summary["passed"], failed or done.stderr[-2000:]
    assert [s["name"] for s in summary["steps"]] == STEPS
    assert "| cuda_tests | passed |" in done.stdout and "every step passed" in done.stdout
    for name in ("frame_cost-fp32", "frame_cost-bf16-channels_last", "gpu_pipeline"):
        assert json.loads((tmp_path / f"{name}.json").read_text())  # each benchmark wrote its results
    assert "skipped" in json.dumps(summary["steps"][-1]["extra"])  # the CUDA tests were collected, then skipped
    versions = summary["steps"][1]["extra"]
    assert versions["torch"] and versions["cuda_available"] is False
    assert all((tmp_path / "logs" / f"{name}.log").is_file() for name in STEPS)


def test_a_failing_step_does_not_stop_the_others(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "OUT")}
    # --device cuda on a machine without a GPU: the versions step fails, the others still run (bar the slow ones)
    skip = ["install", "frame_cost-fp32", "frame_cost-channels_last", "frame_cost-bf16",
            "frame_cost-bf16-channels_last", "gpu_pipeline"]
    done = subprocess.run([sys.executable, str(BENCH / "gpu_run.py"), "--out", str(tmp_path), "--skip", *skip],
                          capture_output=True, text=True, env=env, timeout=300)
    summary = json.loads((tmp_path / "summary.json").read_text())
    statuses = {s["name"]: s["status"] for s in summary["steps"]}
    if versions_have_cuda(summary):
        return  # a GPU machine: nothing here fails
    assert done.returncode == 1 and not summary["passed"]
    assert statuses == {"versions": "failed", "cuda_tests": "passed"}
    assert "torch sees no CUDA GPU" in (tmp_path / "logs" / "versions.log").read_text()


def versions_have_cuda(summary: dict) -> bool:
    return bool(summary["steps"][0]["extra"].get("cuda_available"))
