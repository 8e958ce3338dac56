"""The fleet driver: fan a manifest's streams out over ``worker_count`` ``StudentActor`` workers.

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
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import ray

from odist.config import OdistConfig
from odist.distill.options import StreamOptions, run_document
from odist.errors import ConfigError
from odist.fleet.outcome_log import OutcomeLog
from odist.fleet.progress import FleetProgress
from odist.fleet.runtime import (
    connect,
    sigterm_interrupts,
    start_shared_teacher,
    stop_shared_teacher,
    worker_options,
)
from odist.fleet.scheduler import FleetScheduler
from odist.fleet.student_actor import JobOptions, StreamOutcome, TeacherFactory, start_worker
from odist.fleet.summary import FLEET_SUMMARY, FleetSummary, done_stream_ids, summarise
from odist.fleet.warm_start import AVERAGE, SCHEMES, FleetWarmStart
from odist.run_config import FleetConfig, PoolConfig
from odist.states import Outcome
from odist.storage.documents import start_run, write_fleet_summary
from odist.storage.integrity import damaged_streams
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.run_root import check_run_root
from odist.teacher_default import teacher_for_inputs
from odist.video.manifest import StreamSpec, load_streams

__all__ = ["FLEET_SUMMARY", "FleetScheduler", "FleetSummary", "cluster_capacity", "done_stream_ids", "run_fleet",
           "worker_count"]


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
    teacher_pool: PoolConfig | None = None,
    warm_start: str = "none",
    prewarm_workers: bool = False,
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
    every worker asks instead, stopped again at the end. ``options.init`` warm-starts every stream (a
    manifest row's ``init`` overrides it); ``warm_start="fleet"`` starts streams from finished students
    (``odist.fleet.warm_start``). ``prewarm_workers``: a Ray this call starts or joins pre-warms its workers
    (``odist.fleet.prewarm``).
    """
    fleet = FleetConfig(address, workers, max_streams_in_flight, retries, student_gpus, student_cpus,
                        prewarm_workers).validate()
    started = time.perf_counter()
    specs = load_streams(source)
    fleet_start = warm_start_scheme(warm_start)
    _check_init(options, config)
    store = open_store(out)
    check_run_root(store)
    log = OutcomeLog()
    streams = len(specs)
    todo, finished = _streams_to_run(specs, store, log, keep_finished=fleet_start)
    del specs  # the scheduler hands streams out from ``todo`` and keeps only counts of the finished
    start_run(store, run_document(source, config))
    started_workers, retried = 0, 0
    if todo:
        started_workers, retried = _distill_on_ray(
            todo, finished, store, config, fleet, log, options=options or StreamOptions(),
            average=warm_start == AVERAGE, teacher_pool=teacher_pool, teacher_factory=teacher_factory,
            streams=streams, progress=progress, progress_extras=progress_extras)
    try:
        summary = summarise(source, store, streams, log, time.perf_counter() - started, started_workers, retried)
    finally:
        log.close()
    write_fleet_summary(store, summary.to_dict())
    return summary


def _check_init(options: StreamOptions | None, config: OdistConfig) -> None:
    """Load the warm-start checkpoint ``options.init``, if any: one that fits no stream stops the job at once."""
    if options is not None and options.init:
        from odist.storage.checkpoint import load_checkpoint  # torch, so only for a warm start

        load_checkpoint(options.init, config.to_dict())


def _streams_to_run(specs: list[StreamSpec], store: ObjectStore, log: OutcomeLog, *,
                    keep_finished: bool) -> tuple[list[tuple[int, StreamSpec]], list[StreamSpec] | None]:
    """The streams still to distill, with their manifest positions, and (with ``keep_finished``, for fleet warm
    starts) the finished ones; a done stream is logged as skipped, and one whose committed objects are gone as
    failed, never skipped as done."""
    done = done_stream_ids(store)
    damaged = damaged_streams(store, [spec.stream_id for spec in specs if spec.stream_id in done])
    todo: list[tuple[int, StreamSpec]] = []
    for position, spec in enumerate(specs):
        if spec.stream_id in damaged:
            log.add(StreamOutcome(spec.stream_id, Outcome.FAILED, error=damaged[spec.stream_id]), position)
        elif spec.stream_id in done:
            log.add(StreamOutcome(spec.stream_id, Outcome.SKIPPED), position)
        else:
            todo.append((position, spec))
    if not keep_finished:
        return todo, None
    return todo, [spec for spec in specs if spec.stream_id in done and spec.stream_id not in damaged]


def _distill_on_ray(todo: list[tuple[int, StreamSpec]], finished: list[StreamSpec] | None, store: ObjectStore,
                    config: OdistConfig, fleet: FleetConfig, log: OutcomeLog, *, options: StreamOptions,
                    average: bool, teacher_pool: PoolConfig | None, teacher_factory: TeacherFactory | None,
                    streams: int, progress: bool,
                    progress_extras: Callable[[], Mapping[str, Any]] | None) -> tuple[int, int]:
    """Distill the streams of ``todo`` (emptied: the scheduler holds them) on a pool of Ray workers; the
    workers started and the streams retried. ``finished``: start streams from these students
    (``odist.fleet.warm_start``, their weights averaged with ``average``); None for no fleet warm start.
    ``streams``, ``progress``, ``progress_extras``: the whole job's stream count and its progress display."""
    with _on_ray(fleet, config, todo, teacher_pool, teacher_factory, progress_extras) as (factory, extras):
        count = worker_count(fleet.workers, fleet.max_streams_in_flight, len(todo), fleet.student_gpus,
                             fleet.student_cpus)
        new_worker = functools.partial(start_worker, factory, student_gpus=fleet.student_gpus,
                                       student_cpus=fleet.student_cpus)
        shown = FleetProgress(streams, progress, extras)
        warm = None if finished is None else FleetWarmStart.from_store(
            store, finished, average_config=config.to_dict() if average else None)
        scheduler = FleetScheduler(todo, JobOptions(store.uri, config, options), new_worker, worker_count=count,
                                   retries=fleet.retries, display=shown, log=log, warm_start=warm)
        todo.clear()
        try:
            scheduler.run()
        finally:
            shown.close()
        return count, scheduler.counts.retries


@contextlib.contextmanager
def _on_ray(fleet: FleetConfig, config: OdistConfig, todo: list[tuple[int, StreamSpec]],
            teacher_pool: PoolConfig | None, teacher_factory: TeacherFactory | None,
            extras: Callable[[], Mapping[str, Any]] | None,
            ) -> Iterator[tuple[TeacherFactory | None, Callable[[], Mapping[str, Any]] | None]]:
    """Connected to Ray (shut down again at the end if this started it), SIGTERM stopping the job as Ctrl-C does,
    and with ``teacher_pool`` the configured teacher running as one shared pool until the end: the teacher
    factory and progress extras the workers use."""
    started_ray = connect(fleet.address, prewarm=fleet.prewarm_workers)
    with sigterm_interrupts():  # SIGTERM stops the job as Ctrl-C does, without Ray's stack traces
        try:
            if teacher_pool is not None:  # one teacher for every stream: the oracle only if all are synthetic
                shared = teacher_for_inputs(config, [spec.uri for _, spec in todo])
                teacher_factory, extras = start_shared_teacher(teacher_pool, shared)
            yield teacher_factory, extras
        finally:
            if teacher_pool is not None:
                stop_shared_teacher(teacher_pool)
            if started_ray:
                ray.shutdown()


def warm_start_scheme(name: str) -> bool:
    """Whether ``name`` asks for fleet warm starts; a ``ConfigError`` for an unknown scheme."""
    if name not in SCHEMES:
        raise ConfigError(f"warm_start {name!r} is not a warm-start scheme", f"use one of {', '.join(SCHEMES)}")
    return name != "none"


def worker_count(workers: int | None, max_in_flight: int | None, streams: int, student_gpus: float,
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
