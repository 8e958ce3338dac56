"""The fleet driver: fan a manifest's streams out over ``worker_count`` ``StudentActor`` workers.

``run_fleet`` reads the streams (``load_streams``), skips those already done in the run root (so
re-submitting a job continues it), starts a pool of workers (an actor takes the next stream when one
finishes: no actor per stream), keeps at most one stream per worker in flight, retries a stream whose
worker died on a new worker (the stream resumes from its last commit), shows progress on stderr and
writes ``RUN/fleet_summary.json``. A stream's own errors are recorded in its ``failed.json`` by the worker
and never stop the job.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
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
from odist.storage.objectstore import open_store
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
    FleetConfig(address, workers, max_streams_in_flight, retries, student_gpus, student_cpus,
                prewarm_workers).validate()
    started = time.perf_counter()
    specs = load_streams(source)
    streams = len(specs)
    fleet_start = warm_start_scheme(warm_start)
    if options is not None and options.init:
        from odist.storage.checkpoint import load_checkpoint  # torch, so only for a warm start

        load_checkpoint(options.init, config.to_dict())  # a checkpoint that fits no stream stops the job at once
    store = open_store(out)
    check_run_root(store)
    done = done_stream_ids(store)
    # a done stream whose committed objects are gone is reported as failed, never skipped as done
    damaged = damaged_streams(store, [spec.stream_id for spec in specs if spec.stream_id in done])
    log = OutcomeLog()
    todo: list[tuple[int, StreamSpec]] = []
    for position, spec in enumerate(specs):
        if spec.stream_id in damaged:
            log.add(StreamOutcome(spec.stream_id, Outcome.FAILED, error=damaged[spec.stream_id]), position)
        elif spec.stream_id in done:
            log.add(StreamOutcome(spec.stream_id, Outcome.SKIPPED), position)
        else:
            todo.append((position, spec))
    finished = [spec for spec in specs if spec.stream_id in done and spec.stream_id not in damaged] \
        if fleet_start else []
    del specs, done, damaged  # the scheduler hands streams out from ``todo`` and keeps only counts of the finished
    start_run(store, run_document(source, config))
    started_workers, retried = 0, 0
    if todo:
        started_ray = connect(address, prewarm=prewarm_workers)
        with sigterm_interrupts():  # SIGTERM stops the job as Ctrl-C does, without Ray's stack traces
            try:
                if teacher_pool is not None:  # one teacher for every stream: the oracle only if all are synthetic
                    shared = teacher_for_inputs(config, [spec.uri for _, spec in todo])
                    teacher_factory, progress_extras = start_shared_teacher(teacher_pool, shared)
                started_workers = worker_count(workers, max_streams_in_flight, len(todo), student_gpus, student_cpus)
                new_worker = functools.partial(start_worker, teacher_factory, student_gpus=student_gpus,
                                               student_cpus=student_cpus)
                display = FleetProgress(streams, progress, progress_extras)
                average = config.to_dict() if warm_start == AVERAGE else None
                fleet = None if not fleet_start else FleetWarmStart.from_store(store, finished, average_config=average)
                scheduler = FleetScheduler(todo, JobOptions(store.uri, config, options or StreamOptions()), new_worker,
                                           worker_count=started_workers, retries=retries, display=display, log=log,
                                           warm_start=fleet)
                todo.clear()
                try:
                    scheduler.run()
                finally:
                    display.close()
                retried = scheduler.counts.retries
            finally:
                if teacher_pool is not None:
                    stop_shared_teacher(teacher_pool)
                if started_ray:
                    ray.shutdown()
    try:
        summary = summarise(source, store, streams, log, time.perf_counter() - started, started_workers, retried)
    finally:
        log.close()
    write_fleet_summary(store, summary.to_dict())
    return summary


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
