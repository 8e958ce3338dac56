"""A two-node Ray cluster on this machine (cluster/local/ray-local.sh): both nodes join, and an archive job
submitted with `ray job submit` runs every stream of a manifest to the end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from netutil import free_port

from odist.storage.layout import StreamArea
from odist.storage.listing import list_streams
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "cluster" / "local" / "ray-local.sh"
NODES = 2
FRAMES = 16
STREAMS = {"plaza": "synthetic:static_easy", "crossing": "synthetic:traffic", "dusk": "synthetic:nonstationary"}
EXCLUDES = {"excludes": [".venv", ".git", "bench/results", "runs"]}


@dataclass(frozen=True)
class LocalCluster:
    env: dict[str, str]
    dashboard: str  # http://127.0.0.1:PORT, for ray job submit
    gcs: str  # 127.0.0.1:PORT, for ray status


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def local_cluster():
    # The venv that runs the tests (it has torch and odist) comes first, for the nodes and the job's `python`.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if shutil.which("ray", path=path) is None:
        pytest.skip("the ray CLI is not installed (pip install 'ray[default]')")
    tmp = tempfile.mkdtemp(prefix="rl-", dir="/tmp")  # short: Ray's Unix socket paths are limited
    gcs_port, dashboard_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(PATH=path, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", RAY_LOCAL_TMP=tmp,
               RAY_LOCAL_PORT=str(gcs_port), RAY_LOCAL_DASHBOARD_PORT=str(dashboard_port),
               RAY_LOCAL_PORT_BASE=str(21000 + 100 * (os.getpid() % 40)))
    try:
        start = subprocess.run(["bash", str(SCRIPT), "start", "--nodes", str(NODES), "--cpus-per-node", "2"],
                               env=env, capture_output=True, text=True, timeout=300)
        assert start.returncode == 0, f"ray-local.sh start failed:\n{_tail(start.stdout)}\n{_tail(start.stderr)}"
        dashboard = f"http://127.0.0.1:{dashboard_port}"
        assert f"RAY_ADDRESS={dashboard}" in start.stdout, start.stdout
        yield LocalCluster(env, dashboard, f"127.0.0.1:{gcs_port}")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def test_both_nodes_join(local_cluster):
    status = subprocess.run(["ray", "status", "--address", local_cluster.gcs], env=local_cluster.env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    active = re.findall(r"^ +1 node_[0-9a-f]{16,}$", status.stdout, re.MULTILINE)
    assert len(active) == NODES, status.stdout
    for k in range(NODES):
        assert re.search(rf"/1\.0 node_{k}$", status.stdout, re.MULTILINE), status.stdout
    assert re.search(rf"/{2 * NODES}\.0 CPU$", status.stdout, re.MULTILINE), status.stdout


def test_archive_job_runs_every_stream(local_cluster, tmp_path):
    manifest = tmp_path / "cameras.jsonl"
    manifest.write_text("".join(json.dumps({"uri": uri, "stream_id": sid}) + "\n" for sid, uri in STREAMS.items()))
    out = tmp_path / "run"
    job = subprocess.run(
        ["ray", "job", "submit", "--address", local_cluster.dashboard, "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps(EXCLUDES), "--",
         "python", "ray_jobs/archive_job.py", str(manifest), "--out", str(out), "--workers", "2",
         "--width", "96", "--height", "64", "--frames", str(FRAMES), "--quiet",
         "--set", "student.width=0.25", "--set", "threads=1"],
        env=local_cluster.env, capture_output=True, text=True, timeout=300)
    logs = f"{_tail(job.stdout)}\n{_tail(job.stderr)}"
    assert job.returncode == 0, logs
    assert f"{len(STREAMS)} streams: {len(STREAMS)} done, 0 failed" in job.stdout, logs

    statuses = {s.stream_id: s.status for s in list_streams(str(out))}
    assert statuses == dict.fromkeys(STREAMS, "done")
    store = open_store(str(out))
    for sid in STREAMS:
        frames = read_stream_table(StreamArea(store, sid), "records").column("frame_index").to_pylist()
        assert frames == list(range(FRAMES)), sid
