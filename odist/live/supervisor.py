"""``odist live``: one long-lived camera actor per camera of CAMERAS.yaml, watched until stopped.

The supervisor starts the cameras (and the shared teacher pool, when asked), polls their status, and
re-reads CAMERAS.yaml when it changes: new cameras start, removed ones commit and stop, changed ones
restart; the others are left alone. An invalid entry is reported and skipped; an invalid file keeps
the cameras running as they are. ``stop`` (SIGINT/SIGTERM in the CLI) or the end of ``duration_s``
commits every camera and returns.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError

from odist.config import OdistConfig
from odist.errors import ConfigError
from odist.fleet.runtime import TeacherFactory, connect, start_shared_teacher, stop_shared_teacher, worker_options
from odist.live.actor import LiveCamera
from odist.live.cameras import CameraSpec, read_cameras
from odist.live.placement import NOT_PLACED, actor_states, asks, not_placed_note, state_of
from odist.live.status import CameraStatus
from odist.live.student import LiveOptions
from odist.live.teacher_choice import live_teacher
from odist.redact import redact
from odist.states import CameraState
from odist.storage.documents import write_live_cameras
from odist.storage.objectstore import open_store
from odist.storage.run_root import check_run_root

log = logging.getLogger(__name__)
POLL_S = 1.0
STOP_TIMEOUT_S = 60.0  # every camera together: each commits what it processed, in parallel
STOP_MARGIN_S = 5.0  # a camera's own stop gives up this much sooner, so that it can still answer


@dataclass
class LiveJob:
    """What every camera of an ``odist live`` job shares."""

    out: str
    config: OdistConfig
    options: LiveOptions = field(default_factory=LiveOptions)
    student_gpus: float = 0.0
    student_cpus: float | None = None
    teacher_factory: TeacherFactory | None = None


class CameraFleet:
    """The running camera actors, kept in step with CAMERAS.yaml."""

    def __init__(self, cameras_path: str | Path, job: LiveJob) -> None:
        self.path = Path(cameras_path)
        self.job = job
        self.actors: dict[str, tuple[CameraSpec, Any]] = {}
        self.problems: list[str] = []
        self.last: dict[str, CameraStatus] = {}
        self._mtime: float | None = None

    def sync(self) -> None:
        """Start, stop or restart cameras so the running set matches the file (when it changed)."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            if self._mtime is None:
                raise ConfigError(f"camera list {self.path} cannot be read: {exc.strerror}",
                                  "pass the path of a CAMERAS.yaml") from None
            return  # being rewritten: try again at the next poll
        if mtime == self._mtime:
            return
        try:
            cameras, problems = read_cameras(self.path)
        except ConfigError as exc:
            if self._mtime is None:
                raise
            log.error("%s; the cameras keep running as they are", exc)
            self._mtime = mtime
            return
        self._mtime = mtime
        self.problems = [str(problem) for problem in problems]
        for problem in problems:
            log.error("%s; that camera is skipped", problem)
        wanted = {camera.id: camera for camera in cameras}
        for camera_id in [cid for cid, (spec, _) in self.actors.items() if wanted.get(cid) != spec]:
            self.stop_camera(camera_id)
        for camera_id, camera in wanted.items():
            if camera_id not in self.actors:
                self.start_camera(camera)

    def start_camera(self, camera: CameraSpec) -> None:
        options = worker_options(self.job.student_gpus, self.job.student_cpus)
        actor = LiveCamera.options(**options).remote(camera, self.job.out, self.job.config, self.job.options,
                                                     self.job.teacher_factory)
        self.actors[camera.id] = (camera, actor)
        log.info("camera %s started (%s)", camera.id, camera.shown_url)

    def stop_camera(self, camera_id: str, timeout: float = STOP_TIMEOUT_S) -> CameraStatus | None:
        """Stop one camera (it commits what it processed); its last status."""
        self.stop_cameras([camera_id], timeout)
        return self.last.get(camera_id)

    def stop_all(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop every camera at once: each commits what it processed, all within ``timeout`` together."""
        self.stop_cameras(list(self.actors), timeout)

    def stop_cameras(self, camera_ids: list[str], timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop ``camera_ids`` in parallel, then end their actors.

        A camera Ray has not placed yet has processed nothing: it ends at once, reported stopped. A placed
        one gets ``timeout`` seconds (for all of them together) to commit; one that does not answer by
        then is ended all the same, its last commit standing.
        """
        stopping = {camera_id: self.actors.pop(camera_id)[1] for camera_id in camera_ids}
        states = actor_states(stopping.values())
        asked: dict[Any, str] = {}
        for camera_id, actor in stopping.items():
            if state_of(states, actor) in NOT_PLACED:
                self._mark(camera_id, CameraState.STOPPED, "stopped before Ray started it")
            else:  # the camera's own stop gives up a little before ours, so that it can still answer
                asked[actor.stop.remote(max(timeout - STOP_MARGIN_S, 1.0))] = camera_id
        ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=timeout) if asked else ([], [])
        for ref in asked:
            camera_id = asked[ref]
            try:
                if ref not in ready:
                    raise GetTimeoutError
                self.last[camera_id] = ray.get(ref, timeout=0)
            except RayError:
                self._mark(camera_id, CameraState.STOPPED, f"did not stop within {timeout:g} s; its last commit stands")
        for actor in stopping.values():
            with contextlib.suppress(RayError):
                ray.kill(actor, no_restart=True)

    def _mark(self, camera_id: str, state: str, error: str | None) -> None:
        previous = self.last.get(camera_id) or CameraStatus(camera_id)
        self.last[camera_id] = CameraStatus(**{**previous.as_dict(), "state": state, "error": error})

    def statuses(self, timeout: float = 2.0) -> list[CameraStatus]:
        """Every camera's status, all asked at once and waited for ``timeout`` seconds together; a camera that
        does not answer shows its last status, marked: slow (busy), pending or starting (Ray has not placed it
        or is starting its process), or restarting."""
        refs = {actor.status.remote(): camera_id for camera_id, (_, actor) in self.actors.items()}
        ready, silent = ray.wait(list(refs), num_returns=len(refs), timeout=timeout) if refs else ([], [])
        for ref in ready:
            try:
                self.last[refs[ref]] = ray.get(ref, timeout=0)
            except RayError:
                silent.append(ref)  # died: answered with an error
        states = actor_states(self.actors[refs[ref]][1] for ref in silent)
        for ref in silent:
            camera_id = refs[ref]
            state = state_of(states, self.actors[camera_id][1])
            if state == "ALIVE":
                # Only slow to answer (its process is busy): it runs as it last said.
                self._mark(camera_id, (self.last.get(camera_id) or CameraStatus(camera_id)).state,
                           f"status not answered within {timeout:g} s")
            elif state in NOT_PLACED:
                room, note = not_placed_note(asks(self.job.student_gpus, self.job.student_cpus))
                self._mark(camera_id, CameraState.STARTING if room else CameraState.PENDING, note)
            else:
                self._mark(camera_id, CameraState.RESTARTING, "its actor is not alive")
        return [self.last[camera_id] for camera_id in sorted(self.last)]

    def warn_if_oversubscribed(self) -> None:
        """One warning when the cameras ask for more CPUs or GPUs than the cluster has: some will wait."""
        asks = worker_options(self.job.student_gpus, self.job.student_cpus)
        have = ray.cluster_resources()
        for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            total = asks[key] * len(self.actors)
            if total > have.get(name, 0.0) + 1e-9:
                log.warning("%d camera(s) ask for %g %s(s) but the cluster has %g: some wait as 'pending' until "
                            "resources free up (pass --student-cpus 0.5 or --student-gpus to pack more)",
                            len(self.actors), total, name, have.get(name, 0.0))


def run_live(cameras_path: str | Path, job: LiveJob, *, duration_s: float | None = None,
             address: str | None = None, teacher_pool: Any = None, stop: threading.Event | None = None,
             on_status: Callable[[list[CameraStatus]], None] | None = None, status_every_s: float = 5.0,
             handle_signals: bool = False) -> list[CameraStatus]:
    """Run the cameras of ``cameras_path`` until ``stop`` is set or ``duration_s`` passes; returns the final status.

    Ray: the running one, else ``ray.init(address)``, shut down again at the end. ``on_status`` gets every
    camera's status every ``status_every_s`` seconds; ``live_status.json`` in ``job.out`` holds the last one.
    ``handle_signals`` makes SIGINT and SIGTERM set ``stop`` (installed after Ray's own handlers).
    """
    if job.teacher_factory is None:
        live_teacher(job.config)  # raises unless the configured teacher can label live video
    cameras, problems = read_cameras(cameras_path)
    if not cameras:  # every entry is invalid: nothing would run
        raise ConfigError(f"camera list {cameras_path} has no valid camera; the first problem: {problems[0].what}",
                          problems[0].fix)
    check_run_root(open_store(job.out))
    stop = stop or threading.Event()
    started_ray = connect(address, prewarm=job.config.fleet.prewarm_workers)
    previous = _stop_on_signals(stop) if handle_signals else {}
    fleet = None
    try:
        if teacher_pool is not None:
            job.teacher_factory, _ = start_shared_teacher(teacher_pool, job.config)
        fleet = CameraFleet(cameras_path, job)
        fleet.sync()
        fleet.warn_if_oversubscribed()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_status = time.monotonic() + status_every_s
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(POLL_S)
            fleet.sync()
            if time.monotonic() >= next_status:
                _report(fleet.statuses(), job.out, on_status)
                next_status = time.monotonic() + status_every_s
        fleet.stop_all()
        final = [fleet.last[camera_id] for camera_id in sorted(fleet.last)]
        _report(final, job.out, on_status)
        return final
    finally:
        if fleet is not None and fleet.actors:
            fleet.stop_all(timeout=10.0)
        if teacher_pool is not None:
            stop_shared_teacher(teacher_pool)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if started_ray:
            ray.shutdown()


def _stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGINT / SIGTERM set ``stop``; returns the handlers they replace."""
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


def _report(statuses: list[CameraStatus], out: str, on_status: Callable[[list[CameraStatus]], None] | None) -> None:
    if on_status is not None:
        on_status(statuses)
    with contextlib.suppress(Exception):  # the status file is for people; never stop the cameras for it
        write_live_cameras(open_store(out), {"updated_unix": time.time(),
                                             "cameras": [s.as_dict() for s in statuses]})


def status_table(statuses: list[CameraStatus]) -> str:
    """The CLI's live status table."""
    headers = ["CAMERA", "STATE", "FRAMES", "FPS IN", "FPS OUT", "DROPS", "P50 MS", "P99 MS", "KEYFR", "STRIDE",
               "mIoU", "RECONN", "ERROR"]
    rows = [[s.camera, s.state, str(s.frames), f"{s.fps_in:.1f}", f"{s.fps_out:.1f}",
             f"{s.dropped} ({100 * s.drop_fraction:.1f}%)", _num(s.latency_p50_ms), _num(s.latency_p99_ms),
             f"{s.keyframe_rate:.3f}", str(s.stride), _num(s.miou_vs_teacher, 3), str(s.reconnects),
             redact(s.error or "")[:60]] for s in statuses]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in [headers, *rows])


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
