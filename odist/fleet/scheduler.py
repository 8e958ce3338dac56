"""The fleet's scheduler: feeds streams to a fixed pool of worker actors, retrying streams whose worker died."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import ray
from ray.exceptions import ObjectLostError, OwnerDiedError, RayActorError, RayError, WorkerCrashedError

from odist.errors import ConfigError
from odist.fleet.outcome_log import OutcomeLog
from odist.fleet.progress import FleetCounts, FleetProgress
from odist.fleet.runtime import first_line
from odist.fleet.student_actor import JobOptions, StreamOutcome, record_failure
from odist.fleet.warm_start import FleetWarmStart
from odist.states import Outcome
from odist.video.manifest import StreamSpec

# Errors that mean the worker (or its node) went away mid-stream: the stream is retried elsewhere.
WORKER_LOST = (RayActorError, WorkerCrashedError, ObjectLostError, OwnerDiedError)
PROGRESS_POLL_S = 0.5  # the least time between two progress questions to the busy workers
log = logging.getLogger(__name__)


@dataclass
class _Task:
    position: int
    spec: StreamSpec
    worker: Any


class FleetScheduler:
    """Feeds streams to ``worker_count`` workers, one stream per worker at a time, until all have an outcome.

    ``specs`` are (position in the manifest, stream) pairs; every outcome goes to ``log`` (a new
    ``OutcomeLog`` by default), so the scheduler keeps nothing per finished stream beyond its counts.
    """

    def __init__(self, specs: Iterable[tuple[int, StreamSpec]], job: JobOptions, new_worker: Callable[[], Any], *,
                 worker_count: int, retries: int = 2, display: FleetProgress | None = None,
                 log: OutcomeLog | None = None, poll_seconds: float = 1.0,
                 warm_start: FleetWarmStart | None = None) -> None:
        self.queue: deque[tuple[int, StreamSpec]] = deque(specs)
        self.job, self.new_worker, self.worker_count, self.retries = job, new_worker, worker_count, retries
        self.display, self.poll_seconds = display, poll_seconds
        self.warm_start = warm_start  # ``--warm-start fleet``: streams begin from finished students
        self.workers: list[Any] = []
        self.idle: list[Any] = []
        self.running: dict[ray.ObjectRef, _Task] = {}
        self.attempts: dict[str, int] = {}  # streams in flight or retried only
        self.log = log if log is not None else OutcomeLog()
        self.counts = self.log.counts
        self._live_frames: dict[ray.ObjectRef, int] = {}
        self._teacher_waiting: dict[ray.ObjectRef, int] = {}
        self._polled = -math.inf  # when the busy workers were last asked how far they are

    def run(self) -> OutcomeLog:
        """Process every queued stream; the workers are stopped at the end, whatever happens."""
        try:
            for _ in range(self.worker_count):
                self._add_worker()
            while self.queue or self.running:
                self._submit()
                for ref in self._wait():
                    self._collect(ref)
                self._show()
        finally:
            self._stop_workers()
        return self.log

    # -- the pool ------------------------------------------------------------------------------------

    def _add_worker(self) -> Any:
        worker = self.new_worker()
        self.workers.append(worker)
        self.idle.append(worker)
        return worker

    def _replace_worker(self, worker: Any) -> None:
        """Drop a dead (or unreachable) worker and start a new one in its place."""
        self.workers.remove(worker)
        with contextlib.suppress(RayError):
            ray.kill(worker, no_restart=True)
        self._add_worker()

    def _stop_workers(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(RayError):
                ray.kill(worker, no_restart=True)
        self.workers.clear()
        self.idle.clear()

    # -- streams ---------------------------------------------------------------------------------

    def _submit(self) -> None:
        """Hand queued streams to idle workers."""
        while self.queue and self.idle:
            (position, spec), worker = self.queue.popleft(), self.idle.pop()
            if self.warm_start is not None:
                spec = self.warm_start.apply(spec)
            self.attempts[spec.stream_id] = self.attempts.get(spec.stream_id, 0) + 1
            self.running[worker.process.remote(spec, self.job)] = _Task(position, spec, worker)

    def _wait(self) -> list[ray.ObjectRef]:
        """The finished calls: waits up to ``poll_seconds`` for one, then takes every other one ready."""
        if not self.running:
            return []
        ready, _ = ray.wait(list(self.running), num_returns=1, timeout=self.poll_seconds)
        if not ready:
            return []
        ready, _ = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
        return ready

    def _collect(self, ref: ray.ObjectRef) -> None:
        """Record a finished call; a lost worker is replaced and its stream retried (or failed)."""
        task = self.running.pop(ref)
        self._live_frames.pop(ref, None)
        self._teacher_waiting.pop(ref, None)
        try:
            outcome = ray.get(ref)
        except WORKER_LOST as exc:
            if isinstance(exc, RayActorError) and exc.actor_init_failed:
                raise ConfigError(f"student workers cannot start: {first_line(exc)}",
                                  "check the teacher factory and that odist imports on every node") from None
            self._replace_worker(task.worker)
            self._retry_or_fail(task, exc)
            return
        except RayError as exc:
            outcome = self._fail(task.spec, f"{type(exc).__name__}: {first_line(exc)}")
        self.idle.append(task.worker)
        if self.warm_start is not None and outcome.status == Outcome.DONE:
            self.warm_start.finished_stream(task.spec, outcome.summary)
        self._record(outcome, task.position)

    def _retry_or_fail(self, task: _Task, exc: Exception) -> None:
        spec = task.spec
        attempts = self.attempts.get(spec.stream_id, 1)
        if attempts <= self.retries:
            log.warning("worker of stream %s was lost (%s); retrying from its last commit",
                        spec.stream_id, first_line(exc))
            self.counts.retries += 1
            self.queue.appendleft((task.position, spec))
            return
        self._record(self._fail(spec, f"its worker was lost {attempts} times, last: {first_line(exc)}"),
                     task.position)

    def _fail(self, spec: StreamSpec, error: str) -> StreamOutcome:
        record_failure(self.job.out, spec.stream_id, error)
        return StreamOutcome(spec.stream_id, Outcome.FAILED, error=error)

    def _record(self, outcome: StreamOutcome, position: int) -> None:
        self.attempts.pop(outcome.stream_id, None)
        self.log.add(outcome, position)

    # -- progress --------------------------------------------------------------------------------

    def _show(self) -> None:
        if self.display is None or self.display.bar is None:
            return
        # Asking every busy worker costs two Ray calls each: at most every PROGRESS_POLL_S, however short the
        # streams (a fleet of short streams finishes several a second, and the display needs no more).
        if time.monotonic() - self._polled >= PROGRESS_POLL_S:
            self._polled = time.monotonic()
            self._poll_progress()
        answered = [self._live_frames[ref] for ref in self.running if ref in self._live_frames]
        live = FleetCounts(**{**asdict(self.counts), "running": len(self.running),
                              "frames": self.counts.frames + sum(self._live_frames.values()),
                              "teacher_queue": self.teacher_queue(),
                              "starting": len(self.running) - len(answered),
                              "loading": sum(1 for frames in answered if not frames)})
        self.display.update(live)

    def _poll_progress(self) -> None:
        """Ask the busy workers how far they are (briefly; a slow or dead worker is left for next time)."""
        asks = {task.worker.progress.remote(): ref for ref, task in self.running.items()}
        if not asks:
            return
        ready, _ = ray.wait(list(asks), num_returns=len(asks), timeout=0.2)
        for answer in ready:
            try:
                progress = ray.get(answer)
            except RayError:
                continue
            if asks[answer] in self.running and progress is not None:
                self._live_frames[asks[answer]] = progress.new_frames
                if progress.teacher_waiting is not None:
                    self._teacher_waiting[asks[answer]] = progress.teacher_waiting

    def teacher_queue(self) -> int | None:
        """Label requests the running streams wait for from a teacher pool (None when none uses one)."""
        return sum(self._teacher_waiting.values()) if self._teacher_waiting else None
