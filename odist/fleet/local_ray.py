"""The local Ray that odist starts when no ``--address`` is given: loopback only, and gone with its driver.

- Every process of it (GCS, raylet, agents, workers, the driver's own servers) binds 127.0.0.1, keeps
  Ray's token authentication, and the dashboard is off. ``ODIST_RAY_DASHBOARD=1`` turns the dashboard on
  (on 127.0.0.1:8265); ``ODIST_RAY_EXTERNAL=1`` keeps Ray's own choice of addresses (reachable from other hosts).
- Nothing of it outlives the driver: a small reaper process, started beside it, watches the driver and
  the Ray processes it started; when the driver ends, however it ends (SIGKILL included), the reaper
  kills whatever of them is left (Ray's agents otherwise survive a killed driver).

The reaper is this module run as a script (``python -m odist.fleet.local_ray DRIVER_PID``): it reads
nothing but ``/proc`` and needs no Ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray takes 127.0.0.1 as the node's address
DASHBOARD_ENV = "ODIST_RAY_DASHBOARD"
EXTERNAL_ENV = "ODIST_RAY_EXTERNAL"
POLL_S = 1.0
TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"


def init_local_ray(**kwargs: Any) -> None:
    """``ray.init`` of a new local Ray, bound to loopback, dashboard off (see the module doc), with its reaper."""
    import ray
    from ray._private import ray_constants

    kwargs["include_dashboard"] = os.environ.get(DASHBOARD_ENV) == "1"
    # Ray's token authentication stays on (its default: a token in ~/.ray/auth_token, made on first use; even on
    # loopback, other users of the machine cannot reach the cluster without it); the docs say so once,
    # instead of Ray's warning on every start.
    token_notice = logging.getLogger(TOKEN_NOTICE_LOGGER)
    level = token_notice.level
    token_notice.setLevel(logging.ERROR)
    try:
        _init(ray, ray_constants, kwargs)
    finally:
        token_notice.setLevel(level)
    start_reaper()


def _init(ray: Any, ray_constants: Any, kwargs: dict[str, Any]) -> None:
    if os.environ.get(EXTERNAL_ENV) == "1":
        ray.init(**kwargs)
    else:
        # Only while the head starts: its processes (and the workers its raylet starts) keep the setting;
        # this process's later children (another Ray joining a cluster, say) do not inherit it.
        before_env, before_flag = os.environ.get(LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER
        os.environ[LOOPBACK_ENV] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False  # this process imported Ray already
        try:
            ray.init(**kwargs)
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = before_flag
            if before_env is None:
                os.environ.pop(LOOPBACK_ENV, None)
            else:
                os.environ[LOOPBACK_ENV] = before_env


def start_reaper() -> subprocess.Popen | None:
    """Start the reaper of this driver's Ray processes, once per driver (None on systems without ``/proc``)."""
    global _reaper
    if not os.path.isdir("/proc/self"):
        return None
    if _reaper is not None and _reaper.poll() is None:
        return _reaper  # it follows every process this driver starts, later Ray sessions included
    read_end, write_end = os.pipe()  # the write end is this process's only: it closes when the driver dies
    try:
        _reaper = subprocess.Popen([sys.executable, "-m", "odist.fleet.local_ray", str(os.getpid())],
                                   stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True, close_fds=True)
    finally:
        os.close(read_end)
    _keep.append(write_end)
    return _reaper


_reaper: subprocess.Popen | None = None
_keep: list[int] = []  # the pipes' write ends, held open for the driver's lifetime


# -- the reaper ---------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def _descendants(roots: dict[int, int | None]) -> dict[int, int]:
    """Every live process below ``roots`` (pid -> start time, None: any), roots included: pid -> start time."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: dict[int, int] = {}
    todo = [pid for pid, start in roots.items() if pid in table and start in (None, table[pid][1])]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            todo.extend(children.get(pid, []))
    return found


def reap(driver: int, stdin_fd: int = 0) -> None:
    """Follow ``driver``'s descendants until ``stdin_fd`` reaches end of file; then kill those still alive."""
    import selectors

    me = os.getpid()
    known: dict[int, int] = {}
    selector = selectors.DefaultSelector()
    selector.register(stdin_fd, selectors.EVENT_READ)
    while True:
        known.update(_descendants({driver: None, **known}))
        if selector.select(POLL_S) and not os.read(stdin_fd, 1024):
            break  # the driver is gone
    time.sleep(POLL_S)  # a driver that shut Ray down has nothing left; give its last exits a moment
    known.update(_descendants(known))
    for pid, start in known.items():
        stat = _stat(pid)
        if pid not in (me, driver) and stat is not None and stat[1] == start:  # not a reused pid
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    reap(int(sys.argv[1]))
