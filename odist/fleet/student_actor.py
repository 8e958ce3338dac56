"""The fleet's student worker: a Ray actor that distills one stream per call, for as many calls as it gets.

A worker holds no stream between calls: ``process`` skips a stream that is done, else opens its source,
takes its lease (waiting out the lease of a worker that died writing it) and runs its ``StreamSession``
through ``distill_stream``: resumed from its last commit, committed segment by segment, finished. Every
error of a stream, expected or not, is recorded in the stream's ``failed.json`` (but for another writer
holding its lease) and returned as a ``failed`` outcome, so one bad stream never stops the worker or the
job. Only the death of the worker's process reaches the driver, which starts a new worker and resumes
the stream.

``progress`` answers while ``process`` runs (the actor runs two calls at a time), so the driver can
show frames as they are processed.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray

from odist.config import OdistConfig
from odist.errors import LeaseError, OdistError
from odist.fleet.prewarm import prewarmed_seconds
from odist.fleet.runtime import LocalTeacherFactory, TeacherFactory, worker_options
from odist.redact import install, redact
from odist.states import Outcome

if TYPE_CHECKING:
    from odist.distill.pipeline import StreamLike, StreamOptions
    from odist.distill.runner import Progress

DONE, FAILED, SKIPPED = Outcome.DONE, Outcome.FAILED, Outcome.SKIPPED


@dataclass(frozen=True)
class JobOptions:
    """What every stream of a fleet job shares: the run root, the base config and the stream options."""

    out: str
    config: OdistConfig
    stream: StreamOptions | None = None


@dataclass(frozen=True)
class StreamOutcome:
    """The result of one ``process`` call.

    ``status`` is ``done``, ``failed`` or ``skipped`` (already done in the store); ``frames`` counts the
    frames this call processed (a resumed stream's earlier frames are in ``summary["frames"]``).
    """

    stream_id: str
    status: str
    summary: dict[str, Any] | None = None
    error: str | None = None
    frames: int = 0
    seconds: float = 0.0


@dataclass
class WorkerProgress:
    """What a busy worker reports: its stream, the stream's frame count and the frames of this call."""

    stream_id: str
    frames: int = 0
    new_frames: int = 0
    teacher_waiting: int | None = None  # label requests sent to a shared teacher pool and not yet answered
    started_unix: float = field(default_factory=time.time)


class StudentWorker:
    """Distills one stream per ``process`` call; the body of a ``StudentActor`` (usable without Ray)."""

    def __init__(self, teacher_factory: TeacherFactory | None = None, student_gpus: float = 0.0) -> None:
        install()  # this process's log records mask every secret
        self.teacher_factory = teacher_factory or LocalTeacherFactory()
        self.student_gpus = student_gpus
        self._busy = threading.Lock()
        self._progress: WorkerProgress | None = None
        self._students: Any = None  # a StudentPool, made with the first stream (it imports torch)

    def ping(self) -> dict[str, Any]:
        """Where this worker runs: process id, node, the GPU ids Ray gave it, and the seconds its process
        spent pre-warming (None: not pre-warmed; ``odist.fleet.prewarm``)."""
        context = ray.get_runtime_context() if ray.is_initialized() else None
        return {"pid": os.getpid(), "node_id": context.get_node_id() if context else None,
                "gpu_ids": ray.get_gpu_ids() if context else [], "prewarmed_s": prewarmed_seconds()}

    def progress(self) -> WorkerProgress | None:
        """The stream being processed and how far it is, or None when idle."""
        current = self._progress
        waiting = getattr(self.teacher_factory, "requests_in_flight", None)
        if current is not None and waiting is not None:
            current.teacher_waiting = int(waiting())
        return current

    def process(self, spec: StreamLike, job: JobOptions) -> StreamOutcome:
        """Distill ``spec`` (resuming it from its last commit); never raises for a stream's own errors."""
        with self._busy:
            self._progress = WorkerProgress(spec.stream_id)
            started = time.perf_counter()
            try:
                return self._process(spec, job, started)
            except LeaseError as exc:  # another writer has the stream: its failed.json is not this worker's
                return StreamOutcome(spec.stream_id, FAILED, error=str(exc), frames=self._new_frames(),
                                     seconds=time.perf_counter() - started)
            except OdistError as exc:
                return self._failed(spec, job, str(exc), started)
            except Exception as exc:
                return self._failed(spec, job, redact(f"{type(exc).__name__}: {exc}"), started)
            finally:
                self._progress = None

    def _process(self, spec: StreamLike, job: JobOptions, started: float) -> StreamOutcome:
        from odist.distill.pipeline import StreamOptions, config_for_stream, distill_stream
        from odist.distill.session import done_summary
        from odist.distill.student_pool import StudentPool
        from odist.models.teachers.choice import prepare_weights
        from odist.storage.layout import StreamArea
        from odist.storage.objectstore import open_store

        done = done_summary(StreamArea(open_store(job.out), spec.stream_id))  # skipped before its source is opened
        if done is not None:
            return StreamOutcome(spec.stream_id, SKIPPED, summary=done)
        config = config_for_stream(job.config, tuple(getattr(spec, "overrides", ())), getattr(spec, "teacher", None),
                                   spec.uri)
        config = with_gpu_share(config, self.student_gpus)

        def teacher() -> Any:  # built once the stream's source is open and there are frames to process
            prepare_weights(config)
            return self.teacher_factory(config)

        self._students = self._students or StudentPool()
        student = self._students.take(config)
        summary = distill_stream(spec, job.out, config, teacher,
                                 stream_options(spec, job.stream or StreamOptions()), resume=True,
                                 on_progress=self._on_progress, lease_wait_s=config.storage.crash_wait_s,
                                 student=student)
        self._students.give_back(config, student)  # the stream is over: the next one starts from it, reset
        return StreamOutcome(spec.stream_id, DONE, summary=summary, frames=self._new_frames(),
                             seconds=time.perf_counter() - started)

    def _on_progress(self, p: Progress) -> None:
        current = self._progress
        if current is not None:
            current.frames = p.frames
            current.new_frames += 1

    def _new_frames(self) -> int:
        return 0 if self._progress is None else self._progress.new_frames

    def _failed(self, spec: StreamLike, job: JobOptions, error: str, started: float) -> StreamOutcome:
        """Record ``error`` in the stream's ``failed.json`` (where the store allows) and say so."""
        record_failure(job.out, spec.stream_id, error)
        return StreamOutcome(spec.stream_id, FAILED, error=error, frames=self._new_frames(),
                             seconds=time.perf_counter() - started)


def stream_options(spec: StreamLike, options: StreamOptions) -> StreamOptions:
    """``options`` with the stream's own warm start (a manifest ``init``, or the fleet's pick) over ``--init``."""
    init = getattr(spec, "init", None)
    if init is None:
        return options
    return dataclasses.replace(options, init=init, init_from=getattr(spec, "init_from", None) or "manifest")


def with_gpu_share(config: OdistConfig, student_gpus: float) -> OdistConfig:
    """``config`` with ``performance.gpu_memory_fraction`` set to the actor's GPU share when it has one
    and the config sets none (whole GPUs: 1.0)."""
    if student_gpus <= 0 or config.performance.gpu_memory_fraction is not None:
        return config
    performance = dataclasses.replace(config.performance, gpu_memory_fraction=min(float(student_gpus), 1.0))
    return dataclasses.replace(config, performance=performance)


def record_failure(out: str, stream_id: str, error: str) -> bool:
    """Write the stream's ``failed.json`` (``odist.distill.session.try_record_failure``); False when even that is
    impossible (the store is unreachable)."""
    from odist.distill import session
    from odist.storage.layout import StreamArea
    from odist.storage.objectstore import open_store

    try:
        area = StreamArea(open_store(out), stream_id)
    except OdistError:
        return False
    return session.try_record_failure(area, error)


StudentActor = ray.remote(max_concurrency=2, max_restarts=0)(StudentWorker)
"""The Ray actor class; give it resources with ``.options(num_gpus=..., num_cpus=...)`` (see ``worker_options``)."""


def start_worker(teacher_factory: TeacherFactory | None = None, *, student_gpus: float = 0.0,
                 student_cpus: float | None = None, name: str | None = None) -> Any:
    """A new ``StudentActor`` handle with the given resources."""
    options: dict[str, Any] = dict(worker_options(student_gpus, student_cpus))
    if name is not None:
        options["name"] = name
    return StudentActor.options(**options).remote(teacher_factory, student_gpus=student_gpus)
