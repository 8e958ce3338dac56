"""The fleet driver: fan a manifest's streams out over a fixed pool of ``StudentWorker`` actors.

``run_fleet`` reads the streams (``load_streams``), skips those already done in the run root (so
re-submitting a job continues it), starts a pool of workers (an actor takes the next stream when one
finishes: no actor per stream), keeps at most one stream per worker in flight, retries a stream whose
worker died on a new worker (the stream resumes from its last commit), shows progress on stderr and
writes ``RUN/fleet_summary.json``. A stream's own errors are recorded in its ``failed.json`` by the worker
and never stop the job.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import ray
from ray.exceptions import ObjectLostError, OwnerDiedError, RayActorError, RayError, WorkerCrashedError

from odist.config import OdistConfig
from odist.distill.stream import StreamOptions, run_manifest
from odist.errors import ConfigError
from odist.fleet.local_ray import init_local_ray
from odist.fleet.manifest import StreamSpec, load_streams
from odist.fleet.progress import FleetCounts, FleetProgress
from odist.fleet.student_actor import (
    DONE,
    FAILED,
    SKIPPED,
    JobOptions,
    StreamOutcome,
    TeacherFactory,
    record_failure,
    start_worker,
    worker_options,
)
from odist.storage.layout import STREAMS, dumps
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.run_root import check_run_root

FLEET_SUMMARY = "fleet_summary.json"
# Errors that mean the worker (or its node) went away mid-stream: the stream is retried elsewhere.
WORKER_LOST = (RayActorError, WorkerCrashedError, ObjectLostError, OwnerDiedError)
log = logging.getLogger(__name__)


@dataclass
class FleetSummary:
    """What a fleet job did: stream counts, frames processed, wall time and every failure with its error."""

    source: str
    out: str
    streams: int
    done: int
    failed: int
    skipped: int
    frames: int
    wall_seconds: float
    workers: int
    retries: int
    failures: list[dict[str, str]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frames_per_second": self.frames_per_second}

    def describe(self) -> str:
        """A few lines for people: counts, throughput and the failed streams with their errors."""
        lines = [f"fleet: {self.streams} streams: {self.done} done, {self.failed} failed, {self.skipped} skipped "
                 f"(already done) in {self.wall_seconds:.1f} s; {self.frames} frames processed, "
                 f"{self.frames_per_second:.1f} frames/s; {self.workers} workers, {self.retries} retries",
                 f"results: {self.out}"]
        if self.failures:
            width = max(len(f["stream_id"]) for f in self.failures)
            lines.append("failed streams:")
            lines.extend(f"  {f['stream_id']:<{width}}  {f['error']}" for f in self.failures)
        return "\n".join(lines)


def run_fleet(
    source: str,
    out: str,
    config: OdistConfig,
    *,
    address: str | None = None,
    workers: int | None = None,
    max_streams_in_flight: int | None = None,
    student_gpus: float = 0.0,
    student_cpus: float | None = None,
    options: StreamOptions | None = None,
    retries: int = 2,
    progress: bool = True,
    teacher_factory: TeacherFactory | None = None,
    progress_extras: Callable[[], Mapping[str, Any]] | None = None,
    teacher_pool: Any = None,
) -> FleetSummary:
    """Distill every stream of ``source`` (a manifest, prefix, glob or ``synthetic:SCENARIO``) into ``out``.

    Ray: the running one, else ``ray.init(address)`` (a new local Ray when ``address`` is None), shut down
    again at the end. Workers: ``workers`` actors (default: as many as the cluster's GPUs / CPUs hold at
    ``student_gpus`` / ``student_cpus`` each), no more than ``max_streams_in_flight`` nor than the streams
    left. ``student_cpus`` defaults to 0 with a GPU share and to 1 without. A stream whose worker dies is
    retried up to ``retries`` times, resuming from its last commit. ``options`` are the per-stream options
    (evaluation, frame limit, source size, segment length); ``teacher_factory`` builds each stream's
    teacher inside its worker (default: the configured teacher, built locally). With ``teacher_pool``
    (a ``TeacherPoolConfig``) the configured teacher runs as one shared, batched, autoscaled pool that
    every worker asks instead, stopped again at the end.
    """
    _check_arguments(workers, max_streams_in_flight, student_gpus, student_cpus, retries)
    started = time.perf_counter()
    specs = load_streams(source)
    store = open_store(out)
    check_run_root(store)
    done = done_stream_ids(store)
    todo = [spec for spec in specs if spec.stream_id not in done]
    outcomes = {spec.stream_id: StreamOutcome(spec.stream_id, SKIPPED) for spec in specs if spec.stream_id in done}
    if not store.exists("run.json"):
        store.put("run.json", dumps({**run_manifest(), "input": source, "config": config.to_dict()}))
    pool, retried = 0, 0
    if todo:
        started_ray = connect(address)
        try:
            if teacher_pool is not None:
                teacher_factory, progress_extras = start_shared_teacher(teacher_pool, config)
            pool = pool_size(workers, max_streams_in_flight, len(todo), student_gpus, student_cpus)
            new_worker = functools.partial(start_worker, teacher_factory, student_gpus=student_gpus,
                                           student_cpus=student_cpus)
            display = FleetProgress(len(specs), progress, progress_extras)
            driver = FleetDriver(todo, JobOptions(store.uri, config, options or StreamOptions()), new_worker,
                                 pool=pool, retries=retries, display=display, skipped=len(outcomes))
            try:
                outcomes.update((o.stream_id, o) for o in driver.run())
            finally:
                display.close()
            retried = driver.counts.retries
        finally:
            if teacher_pool is not None:
                stop_shared_teacher()
            if started_ray:
                ray.shutdown()
    summary = _summarise(source, store, specs, outcomes, time.perf_counter() - started, pool, retried)
    store.put(FLEET_SUMMARY, dumps(summary.to_dict()))
    return summary


@dataclass
class _Task:
    spec: StreamSpec
    worker: Any


class FleetDriver:
    """Feeds streams to a fixed pool of workers, one stream per worker at a time, until all have an outcome."""

    def __init__(self, specs: Iterable[StreamSpec], job: JobOptions, new_worker: Callable[[], Any], *,
                 pool: int, retries: int = 2, display: FleetProgress | None = None, skipped: int = 0,
                 poll_seconds: float = 1.0) -> None:
        self.queue: deque[StreamSpec] = deque(specs)
        self.job, self.new_worker, self.pool_size, self.retries = job, new_worker, pool, retries
        self.display, self.poll_seconds = display, poll_seconds
        self.workers: list[Any] = []
        self.idle: list[Any] = []
        self.running: dict[ray.ObjectRef, _Task] = {}
        self.attempts: dict[str, int] = {}
        self.outcomes: list[StreamOutcome] = []
        self.counts = FleetCounts(skipped=skipped)
        self._live_frames: dict[ray.ObjectRef, int] = {}
        self._teacher_waiting: dict[ray.ObjectRef, int] = {}

    def run(self) -> list[StreamOutcome]:
        """Process every queued stream; the workers are stopped at the end, whatever happens."""
        try:
            for _ in range(self.pool_size):
                self._add_worker()
            while self.queue or self.running:
                self._submit()
                for ref in self._wait():
                    self._collect(ref)
                self._show()
        finally:
            self._stop_workers()
        return self.outcomes

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
            spec, worker = self.queue.popleft(), self.idle.pop()
            self.attempts[spec.stream_id] = self.attempts.get(spec.stream_id, 0) + 1
            self.running[worker.process.remote(spec, self.job)] = _Task(spec, worker)

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
                raise ConfigError(f"student workers cannot start: {_first_line(exc)}",
                                  "check the teacher factory and that odist imports on every node") from None
            self._replace_worker(task.worker)
            self._retry_or_fail(task.spec, exc)
            return
        except RayError as exc:
            outcome = self._fail(task.spec, f"{type(exc).__name__}: {_first_line(exc)}")
        self.idle.append(task.worker)
        self._record(outcome)

    def _retry_or_fail(self, spec: StreamSpec, exc: Exception) -> None:
        attempts = self.attempts.get(spec.stream_id, 1)
        if attempts <= self.retries:
            log.warning("worker of stream %s was lost (%s); retrying from its last commit",
                        spec.stream_id, _first_line(exc))
            self.counts.retries += 1
            self.queue.appendleft(spec)
            return
        self._record(self._fail(spec, f"its worker was lost {attempts} times, last: {_first_line(exc)}"))

    def _fail(self, spec: StreamSpec, error: str) -> StreamOutcome:
        record_failure(self.job.out, spec.stream_id, error)
        return StreamOutcome(spec.stream_id, FAILED, error=error)

    def _record(self, outcome: StreamOutcome) -> None:
        self.outcomes.append(outcome)
        self.counts.frames += outcome.frames
        if outcome.status == DONE:
            self.counts.done += 1
        elif outcome.status == SKIPPED:
            self.counts.skipped += 1
        else:
            self.counts.failed += 1

    # -- progress --------------------------------------------------------------------------------

    def _show(self) -> None:
        if self.display is None or self.display.bar is None:
            return
        self._poll_progress()
        live = FleetCounts(**{**asdict(self.counts), "running": len(self.running),
                              "frames": self.counts.frames + sum(self._live_frames.values()),
                              "teacher_queue": self.teacher_queue()})
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


def start_shared_teacher(pool_config: Any, config: OdistConfig
                         ) -> tuple[TeacherFactory, Callable[[], Mapping[str, Any]]]:
    """Start the shared teacher pool; returns the workers' teacher factory and a progress probe."""
    from odist.fleet import teacher_pool as tp

    handle = tp.start_teacher_pool(pool_config, config.teacher.name, config.teacher, config.classes, config.device,
                                   performance=config.performance)
    factory = tp.PoolTeacherFactory(handle, config.classes, pool_config)
    return factory, lambda: {"replicas": tp.teacher_pool_replicas().get("RUNNING", 0)}


def stop_shared_teacher() -> None:
    from odist.fleet import teacher_pool as tp

    try:
        tp.stop_teacher_pool()
    except Exception:  # the outcome is decided; Ray shutdown removes what is left
        logging.getLogger(__name__).warning("could not stop the teacher pool cleanly", exc_info=True)


def connect(address: str | None = None) -> bool:
    """Connect to Ray (a new local instance when ``address`` is None); True when this call started it."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "logging_level": logging.WARNING}
    if address is not None:
        _check_reachable(address)
    try:
        if address is None:
            init_local_ray(**kwargs)  # loopback only, no dashboard, nothing left behind (odist.fleet.local_ray)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot connect to Ray at {address}: {_first_line(exc)}",
                          "start a cluster with `ray start --head`, pass its address (HOST:6379 or "
                          "ray://HOST:10001), or leave --address out for a local Ray") from None
    return True


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast on a ``HOST:PORT`` address nothing listens on (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot connect to Ray at {address}: {exc.strerror or exc}",
                          "check the head node's address and port (ray start --head prints them), "
                          "or leave --address out for a local Ray") from None


def pool_size(workers: int | None, max_in_flight: int | None, streams: int, student_gpus: float,
              student_cpus: float | None) -> int:
    """How many workers to start: ``workers`` or what the cluster holds, at most ``max_in_flight`` and ``streams``."""
    count = workers if workers is not None else cluster_capacity(student_gpus, student_cpus)
    if max_in_flight is not None:
        count = min(count, max_in_flight)
    return max(0, min(count, streams))


def cluster_capacity(student_gpus: float, student_cpus: float | None) -> int:
    """How many workers the cluster's resources hold now (at least 1, so an autoscaler can add the rest)."""
    resources = ray.cluster_resources()
    wanted = worker_options(student_gpus, student_cpus)
    fits = [math.floor(resources.get(name, 0.0) / amount + 1e-9)
            for name, amount in (("GPU", wanted["num_gpus"]), ("CPU", wanted["num_cpus"])) if amount > 0]
    return max(1, min(fits)) if fits else max(1, int(resources.get("CPU", 1)))


def done_stream_ids(store: ObjectStore) -> set[str]:
    """Ids of the streams that have a ``summary.json`` (done), from one listing of the run root."""
    done = set()
    for key in store.list(f"{STREAMS}/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "summary.json" and parts[1].startswith("stream_id="):
            done.add(parts[1][len("stream_id="):])
    return done


def _summarise(source: str, store: ObjectStore, specs: list[StreamSpec], outcomes: Mapping[str, StreamOutcome],
               wall: float, workers: int, retries: int) -> FleetSummary:
    """The fleet summary, streams in manifest order."""
    ordered = [outcomes[spec.stream_id] for spec in specs if spec.stream_id in outcomes]
    count = {status: sum(o.status == status for o in ordered) for status in (DONE, FAILED, SKIPPED)}
    rows = [{"stream_id": o.stream_id, "status": o.status, "frames": o.frames, "seconds": o.seconds,
             "error": o.error} for o in ordered]
    failures = [{"stream_id": o.stream_id, "error": o.error or ""} for o in ordered if o.status == FAILED]
    return FleetSummary(source=source, out=store.uri, streams=len(specs), done=count[DONE], failed=count[FAILED],
                        skipped=count[SKIPPED], frames=sum(o.frames for o in ordered), wall_seconds=wall,
                        workers=workers, retries=retries, failures=failures, outcomes=rows)


def _check_arguments(workers: int | None, max_in_flight: int | None, student_gpus: float,
                     student_cpus: float | None, retries: int) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers} is not positive", "pass a worker count >= 1")
    if max_in_flight is not None and max_in_flight < 1:
        raise ConfigError(f"--max-streams-in-flight {max_in_flight} is not positive", "pass a count >= 1")
    if student_gpus < 0 or (student_cpus is not None and student_cpus < 0):
        raise ConfigError("--student-gpus and --student-cpus cannot be negative", "pass a share such as 0.125")
    if student_gpus > 1 and not float(student_gpus).is_integer():
        raise ConfigError(f"--student-gpus {student_gpus} is above 1 but not whole",
                          "pass a fraction <= 1 or a whole number of GPUs")
    if retries < 0:
        raise ConfigError(f"--retries {retries} is negative", "pass 0 or more")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
