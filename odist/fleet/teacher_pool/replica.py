"""A teacher replica: one teacher model behind a Serve deployment, labelling frames in dynamic batches."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray import serve

from odist.config import config_from_dict
from odist.errors import TeacherError
from odist.fleet.teacher_pool.config import (
    DEPLOYMENT_NAME,
)
from odist.models.teachers.base import Labels, Teacher
from odist.models.teachers.registry import build_teacher
from odist.video.frame import Frame


@dataclass(frozen=True)
class LabelReply:
    """A replica's answer for one frame: its labels, its even share of the batch's cost, and the batch."""

    labels: Labels
    seconds: float
    gflops: float
    batch_size: int
    replica: str


@dataclass
class BatchStats:
    """What one replica has labelled: forwards run, frames labelled, and how many forwards had each size."""

    batches: int = 0
    frames: int = 0
    busy_seconds: float = 0.0
    batch_sizes: Counter[int] = dataclasses.field(default_factory=Counter)

    def record(self, size: int, seconds: float) -> None:
        self.batches += 1
        self.frames += size
        self.busy_seconds += seconds
        self.batch_sizes[size] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, "frames": self.frames, "busy_seconds": self.busy_seconds,
                "batch_sizes": dict(sorted(self.batch_sizes.items()))}


class FrameBatcher:
    """Runs a teacher one batch at a time, each batch taking every waiting frame up to ``max_batch_size``.

    ``submit`` is called on the replica's event loop and returns one future per frame; the teacher runs
    in a worker thread so new frames keep arriving (and queueing for the next batch) meanwhile.

    Adaptive batching (``gather_s`` > 0): the callers of the last batch, and those who queued while it
    was labelled, are expected back (a student waits for its label, then sends its next keyframe), so
    before a forward the batcher waits up to ``gather_s`` until that many frames (at most a full batch)
    are waiting. A lone caller is expected alone, so its frame goes at once: there is no fixed window to
    pay when nobody else is waiting. ``gather_s`` 0 takes whatever waits (greedy).
    """

    def __init__(self, teacher: Teacher, max_batch_size: int, replica: str = "local", gather_s: float = 0.0) -> None:
        self.teacher = teacher
        self.max_batch_size = max_batch_size
        self.replica = replica
        self.gather_s = gather_s
        self.stats = BatchStats()
        self._pending: list[tuple[Frame, asyncio.Future[LabelReply]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._expected = 0  # callers of the last round (its batch and who queued meanwhile): likely back
        self._arrived: asyncio.Event | None = None

    def submit(self, frames: Sequence[Frame]) -> list[asyncio.Future[LabelReply]]:
        """Queue ``frames``; each future resolves to a ``LabelReply`` or the frame's error."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[LabelReply]] = [loop.create_future() for _ in frames]
        self._pending.extend(zip(frames, futures, strict=True))
        if self._arrived is not None:
            self._arrived.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return futures

    async def _drain(self) -> None:
        while self._pending:
            await self._gather()
            batch = self._next_batch()
            if not batch:
                continue
            try:
                outcomes = await asyncio.to_thread(self.label_now, [frame for frame, _ in batch])
            except Exception as exc:  # the worker thread itself failed: fail the batch, keep serving
                outcomes = [exc] * len(batch)
            self._expected = min(len(batch) + len(self._pending), self.max_batch_size)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _gather(self) -> None:
        """Wait up to ``gather_s`` until as many frames wait as the last round had callers."""
        wanted = self._expected
        if self.gather_s <= 0 or len(self._pending) >= wanted:
            return
        deadline = asyncio.get_running_loop().time() + self.gather_s
        self._arrived = asyncio.Event()
        try:
            while len(self._pending) < wanted:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    return
        finally:
            self._arrived = None

    def _next_batch(self) -> list[tuple[Frame, asyncio.Future[LabelReply]]]:
        """Take up to ``max_batch_size`` waiting frames, dropping requests their callers cancelled."""
        live = [item for item in self._pending if not item[1].done()]
        batch, self._pending = live[: self.max_batch_size], live[self.max_batch_size:]
        return batch

    def label_now(self, frames: list[Frame]) -> list[LabelReply | Exception]:
        """Label ``frames`` in one forward; if it fails, label them one by one so an error stays with its frame."""
        start = time.perf_counter()
        try:
            result = self.teacher.label(frames)
            if len(result.labels) != len(frames):
                raise TeacherError(f"teacher {self.teacher.name!r} returned {len(result.labels)} labels "
                                   f"for {len(frames)} frames", "a teacher must label every frame it is given")
        except Exception as exc:
            if len(frames) == 1:
                return [exc]
            return [self.label_now([frame])[0] for frame in frames]
        self.stats.record(len(frames), time.perf_counter() - start)
        n = len(frames)
        return [LabelReply(labels=labels, seconds=result.seconds / n, gflops=result.gflops / n,
                           batch_size=n, replica=self.replica) for labels in result.labels]


def _replica_name() -> str:
    try:
        return serve.get_replica_context().replica_id.unique_id
    except Exception:
        return "local"


class LabellingReplica:
    """What every pool replica is, Serve's or a plain actor: one teacher model behind a ``FrameBatcher``.

    ``teacher_config`` is ``TeacherConfig`` as plain data (``dataclasses.asdict``); ``setup``, if given,
    runs first in the replica's process (e.g. to register a teacher defined outside odist).
    """

    def __init__(self, teacher_spec: str, teacher_config: Mapping[str, Any], class_names: Sequence[str],
                 device: str, max_batch_size: int, gather_s: float, setup: Callable[[], object] | None,
                 performance: Mapping[str, Any] | None, replica: str) -> None:
        if setup is not None:
            setup()
        full = config_from_dict({"classes": list(class_names), "teacher": dict(teacher_config),
                                 "performance": dict(performance or {})})
        self._spec = teacher_spec
        self._teacher = build_teacher(teacher_spec, full.teacher, class_names, device, full.performance)
        self._batcher = FrameBatcher(self._teacher, max_batch_size, replica, gather_s=gather_s)

    async def label(self, frame: Frame) -> LabelReply:
        """Label one frame, batched with the other callers' frames."""
        (future,) = self._batcher.submit([frame])
        return await future

    def gflops_per_frame(self, height: int, width: int) -> float:
        return float(self._teacher.gflops_per_frame(height, width))

    def class_names(self) -> list[str]:
        return list(self._teacher.class_names)

    def stats(self) -> dict[str, Any]:
        """This replica's id, teacher and batching record (``batch_sizes``: forward size -> count)."""
        return {"replica": self._batcher.replica, "teacher": self._spec, **self._batcher.stats.as_dict()}


@serve.deployment(name=DEPLOYMENT_NAME)
class TeacherReplica(LabellingReplica):
    """One teacher model serving label requests from every student, in dynamic batches (a Serve replica).

    ``batching``: ``adaptive`` (each request goes straight to the ``FrameBatcher``, which waits up to
    ``batch_wait_timeout_s`` only for the callers it expects back) or ``window`` (``@serve.batch``
    collects every ``batch_wait_timeout_s`` window first, so even a lone request waits one window).
    """

    def __init__(self, teacher_spec: str, teacher_config: Mapping[str, Any], class_names: Sequence[str],
                 device: str = "cpu", max_batch_size: int = 8, batch_wait_timeout_s: float = 0.05,
                 setup: Callable[[], object] | None = None, performance: Mapping[str, Any] | None = None,
                 batching: str = "adaptive") -> None:
        self._windowed = batching == "window"
        super().__init__(teacher_spec, teacher_config, class_names, device, max_batch_size,
                         0.0 if self._windowed else batch_wait_timeout_s, setup, performance, _replica_name())
        self._collect.set_max_batch_size(max_batch_size)
        self._collect.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def label(self, frame: Frame) -> LabelReply:
        """Label one frame, batched with the other callers' frames."""
        if self._windowed:
            pending = await self._collect(frame)
            return await pending
        return await super().label(frame)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def _collect(self, frames: list[Frame]) -> list[asyncio.Future[LabelReply]]:
        return self._batcher.submit(frames)
