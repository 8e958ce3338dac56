"""The local Ray odist starts listens on loopback only, and nothing of it outlives a SIGKILLed driver.

Processes and sockets are read from ``/proc`` (Linux only)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/net"), reason="reads /proc")

DEADLINE_S = 120.0  # a loaded 2-core machine
# Ray's own processes notice a dead driver only after their health checks time out (a minute or more, and its
# agents not at all in some versions); the reaper kills them within a second or two of the driver's death.
GONE_DEADLINE_S = 30.0
DASHBOARD_PORT = 8265  # the dashboard's web UI, off unless asked


def _stat(pid: int) -> tuple[int, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live process below ``root``."""
    table = {int(n): s for n in os.listdir("/proc") if n.isdigit() and (s := _stat(int(n))) is not None}
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in table and pid not in found:
            found[pid] = table[pid][1]
            todo += children.get(pid, [])
    return found


def alive(processes: dict[int, int]) -> list[int]:
    """Those of ``processes`` still running (the same process: same start time; zombies count as gone)."""
    left = []
    for pid, start in processes.items():
        stat = _stat(pid)
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if stat is not None and stat[1] == start and state != b"Z":
            left.append(pid)
    return left


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def listening(pid: int) -> list[str]:
    """The addresses ``pid``'s listening TCP sockets are bound to (hex, as /proc/net/tcp* writes them)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        tables = [Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:] for name in ("tcp", "tcp6")]
    except OSError:
        return []
    return [f[1] for lines in tables for f in (line.split() for line in lines) if f[3] == "0A" and f[9] in inodes]


LOOPBACK = ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")


def is_loopback(address: str) -> bool:
    return address.rsplit(":", 1)[0] in LOOPBACK


@pytest.fixture
def ray_tmp():
    path = Path(tempfile.mkdtemp(prefix="odl", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


DRIVER = textwrap.dedent("""
    import sys, time
    import ray
    from odist.fleet.runtime import connect

    assert connect() is True
    @ray.remote
    class Echo:
        def ping(self):
            return 1
    actor = Echo.remote()
    assert ray.get(actor.ping.remote(), timeout=120) == 1
    print("ready", flush=True)
    time.sleep(600)
""")


def test_a_local_run_listens_on_loopback_only_and_dies_with_its_driver(ray_tmp, tmp_path):
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_AUTH_MODE", None)  # Ray's default: token authentication, with a notice odist keeps quiet
    errors = tmp_path / "driver.err"
    with errors.open("w") as err:
        driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=err, text=True,
                                  env=env)
    try:
        assert driver.stdout.readline().strip() == "ready"
        assert "Token authentication" not in errors.read_text()
        processes = descendants(driver.pid)
        names = " ".join(cmdline(pid) for pid in processes)
        assert "gcs_server" in names and "raylet" in names
        sockets = {pid: listening(pid) for pid in [driver.pid, *processes]}
        assert any(sockets.values())
        assert not any(a.endswith(f":{DASHBOARD_PORT:04X}") for found in sockets.values() for a in found)
        exposed = {f"{pid} {cmdline(pid)[:60]}": [a for a in found if not is_loopback(a)]
                   for pid, found in sockets.items()}
        assert not any(exposed.values()), exposed
        _sigkill_and_wait_gone(driver, processes, ray_tmp)
    finally:
        _stop(driver)


def test_a_sigkilled_odist_run_leaves_no_ray_process(ray_tmp, tmp_path):
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "run"
    driver = subprocess.Popen(
        [sys.executable, "-m", "odist.cli", "run", "synthetic:traffic", "--out", str(out), "--frames", "5000",
         "--width", "48", "--height", "32", "--set", "student.width=0.25", "--set", "threads=1", "--workers", "1",
         "--segment-frames", "4", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not list(out.glob("streams/*/commits/*.json")):  # a worker is distilling
            assert driver.poll() is None, "odist run ended early"
            assert time.monotonic() < deadline, "odist run committed nothing"
            time.sleep(0.5)
        processes = descendants(driver.pid)
        assert any("raylet" in cmdline(pid) for pid in processes)
        _sigkill_and_wait_gone(driver, processes, ray_tmp)
    finally:
        _stop(driver)


def _sigkill_and_wait_gone(driver: subprocess.Popen, processes: dict[int, int], ray_tmp: Path) -> None:
    """SIGKILL the driver, then wait until none of its Ray processes is left."""
    driver.send_signal(signal.SIGKILL)
    driver.wait(30)
    _wait_gone(processes, ray_tmp)


def _stop(driver: subprocess.Popen) -> None:
    """Kill the driver if a failed assertion left it running."""
    if driver.poll() is None:
        driver.kill()
        driver.wait()


def _wait_gone(processes: dict[int, int], ray_tmp: Path) -> None:
    deadline = time.monotonic() + GONE_DEADLINE_S
    while left := alive(processes):
        if time.monotonic() > deadline:
            pytest.fail(f"still alive {GONE_DEADLINE_S:.0f} s after the driver was killed: "
                        + "; ".join(f"{pid} {cmdline(pid)[:80]}" for pid in left))
        time.sleep(0.5)
    strays = [pid for pid in (int(n) for n in os.listdir("/proc") if n.isdigit()) if str(ray_tmp) in cmdline(pid)]
    assert not strays, [cmdline(pid)[:80] for pid in strays]
