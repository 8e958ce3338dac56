"""The teacher pool: a shared, autoscaled Ray Serve deployment of teacher replicas, and its client.

Every student of a fleet sends its keyframes here. One ``TeacherReplica`` holds one teacher model and
labels the frames of many cameras together in dynamic batches; Serve adds replicas while requests
queue up and removes them when the pool is idle (``TeacherPoolConfig``). ``PooledTeacher`` is the
``Teacher`` a student uses: one request per frame, retried when a replica dies or does not answer in
time (labelling is idempotent), so a lost replica never loses a label.

How batches form. ``@serve.batch`` collects the requests that arrive within ``batch_wait_timeout_s``
of each other, but it closes a batch every window even while the teacher is still busy with the
previous one, which under load yields many small batches. So the Serve batch only *collects*: it hands
its requests to the replica's ``FrameBatcher`` and returns at once; the batcher runs one teacher forward
at a time (in a worker thread, so the replica keeps accepting requests) and each forward takes every
waiting request, up to ``max_batch_size``. Under load a batch is whatever queued during the previous
forward; when idle, whatever arrived within one wait window.

Typical use::

    handle = start_teacher_pool(TeacherPoolConfig(min_replicas=1, max_replicas=4, num_gpus=1),
                                "maskrcnn", config.teacher, config.classes, device="cuda")
    teacher = PooledTeacher(handle, config.classes)   # picklable: pass it into student actors
    result = teacher.label(keyframes)
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from odist.config import OdistConfig, PerformanceConfig, TeacherConfig, config_from_dict
from odist.errors import OdistError, TeacherError
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.models.teachers.registry import build_teacher
from odist.run_config import PoolConfig
from odist.video.frame import Frame

DEFAULT_POOL_NAME = "odist-teacher"
DEPLOYMENT_NAME = "TeacherReplica"
REPLICA_ACTOR_PREFIX = "SERVE_REPLICA::"
SERVE_NAMESPACE = "serve"


TeacherPoolConfig = PoolConfig  # the ``pool`` section of the config tree


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
    """

    def __init__(self, teacher: Teacher, max_batch_size: int, replica: str = "local") -> None:
        self.teacher = teacher
        self.max_batch_size = max_batch_size
        self.replica = replica
        self.stats = BatchStats()
        self._pending: list[tuple[Frame, asyncio.Future[LabelReply]]] = []
        self._worker: asyncio.Task[None] | None = None

    def submit(self, frames: Sequence[Frame]) -> list[asyncio.Future[LabelReply]]:
        """Queue ``frames``; each future resolves to a ``LabelReply`` or the frame's error."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[LabelReply]] = [loop.create_future() for _ in frames]
        self._pending.extend(zip(frames, futures, strict=True))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return futures

    async def _drain(self) -> None:
        while self._pending:
            batch = self._next_batch()
            if not batch:
                continue
            try:
                outcomes = await asyncio.to_thread(self.label_now, [frame for frame, _ in batch])
            except Exception as exc:  # the worker thread itself failed: fail the batch, keep serving
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

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


@serve.deployment(name=DEPLOYMENT_NAME)
class TeacherReplica:
    """One teacher model serving label requests from every student, in dynamic batches.

    ``teacher_config`` is ``TeacherConfig`` as plain data (``dataclasses.asdict``); ``setup``, if given,
    runs first in the replica's process (e.g. to register a teacher defined outside odist).
    """

    def __init__(self, teacher_spec: str, teacher_config: Mapping[str, Any], class_names: Sequence[str],
                 device: str = "cpu", max_batch_size: int = 8, batch_wait_timeout_s: float = 0.05,
                 setup: Callable[[], object] | None = None, performance: Mapping[str, Any] | None = None) -> None:
        if setup is not None:
            setup()
        full = config_from_dict({"classes": list(class_names), "teacher": dict(teacher_config),
                                 "performance": dict(performance or {})})
        self._spec = teacher_spec
        self._teacher = build_teacher(teacher_spec, full.teacher, class_names, device, full.performance)
        self._batcher = FrameBatcher(self._teacher, max_batch_size, _replica_name())
        self._collect.set_max_batch_size(max_batch_size)
        self._collect.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def label(self, frame: Frame) -> LabelReply:
        """Label one frame, batched with the other callers' frames."""
        pending = await self._collect(frame)
        return await pending

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def _collect(self, frames: list[Frame]) -> list[asyncio.Future[LabelReply]]:
        return self._batcher.submit(frames)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return float(self._teacher.gflops_per_frame(height, width))

    def class_names(self) -> list[str]:
        return list(self._teacher.class_names)

    def stats(self) -> dict[str, Any]:
        """This replica's id, teacher and batching record (``batch_sizes``: forward size -> count)."""
        return {"replica": self._batcher.replica, "teacher": self._spec, **self._batcher.stats.as_dict()}


def start_teacher_pool(
    pool_config: TeacherPoolConfig,
    teacher_spec: str,
    teacher_config: TeacherConfig,
    class_names: Sequence[str],
    device: str = "cpu",
    name: str = DEFAULT_POOL_NAME,
    setup: Callable[[], object] | None = None,
    performance: PerformanceConfig | None = None,
) -> DeploymentHandle:
    """Deploy (or update) the pool as the Serve application ``name`` and return its handle.

    Starts Serve without an HTTP proxy if it is not running, then waits up to ``start_timeout_s`` for
    the first replicas, so a teacher that cannot be built, or replicas that cannot be placed (they
    would otherwise wait for GPUs silently), fail here with a ``TeacherError``, not on the first keyframe.
    """
    pool_config.validate()
    serve.start(proxy_location="Disabled")
    deployment = TeacherReplica.options(
        autoscaling_config=pool_config.autoscaling_config(),
        max_ongoing_requests=pool_config.ongoing_limit(),
        ray_actor_options=pool_config.actor_options(),
        health_check_period_s=pool_config.health_check_period_s,
        max_constructor_retry_count=pool_config.max_constructor_retries,
        graceful_shutdown_timeout_s=pool_config.graceful_shutdown_timeout_s,
    )
    app = deployment.bind(teacher_spec, dataclasses.asdict(teacher_config), list(class_names), device,
                          pool_config.max_batch_size, pool_config.batch_wait_timeout_s, setup,
                          None if performance is None else dataclasses.asdict(performance))
    (handle,) = serve.run_many([serve.RunTarget(app, name=name, route_prefix=None)],
                               wait_for_applications_running=False)
    _wait_until_running(name, teacher_spec, pool_config)
    return handle


def _wait_until_running(name: str, teacher_spec: str, pool_config: TeacherPoolConfig) -> None:
    """Poll Serve until the pool runs; on failure or timeout delete it and raise ``TeacherError``."""
    deadline = time.monotonic() + pool_config.start_timeout_s
    while True:
        app = serve.status().applications.get(name)
        status = str(getattr(app.status, "value", app.status)) if app is not None else "NOT_STARTED"
        if status == "RUNNING":
            return
        failed = status in ("DEPLOY_FAILED", "UNHEALTHY")
        if failed or time.monotonic() > deadline:
            replicas = teacher_pool_replicas(name)
            message = _failure_message(app)
            stop_teacher_pool(name)
            if failed:
                raise TeacherError(f"teacher pool {name!r} ({teacher_spec}) failed to start: {message}",
                                   "check the teacher spec, its weights and the replica logs")
            raise TeacherError(
                f"teacher pool {name!r} ({teacher_spec}) is not running after {pool_config.start_timeout_s:g} s "
                f"(replicas: {replicas or 'none'})",
                f"each replica asks for {pool_config.actor_options()}: make sure the cluster has that much free "
                "for min_replicas replicas, lower the shares, or raise start_timeout_s")
        time.sleep(0.25)


def _failure_message(app: Any) -> str:
    """The most telling line of a failed deployment's status: the replica's own error, if Serve kept it."""
    if app is None:
        return ""
    deployment = app.deployments.get(DEPLOYMENT_NAME)
    text = (deployment.message if deployment is not None else "") or app.message
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line.split(":", 1)[0]]
    return (errors or lines or [""])[-1]


def stop_teacher_pool(name: str = DEFAULT_POOL_NAME) -> None:
    """Delete the pool's Serve application and its replicas (Serve itself keeps running)."""
    serve.delete(name)


def teacher_pool_replicas(name: str = DEFAULT_POOL_NAME) -> dict[str, int]:
    """How many of the pool's replicas are in each state (``RUNNING``, ``STARTING``, ...); {} if absent."""
    app = serve.status().applications.get(name)
    if app is None or DEPLOYMENT_NAME not in app.deployments:
        return {}
    states = app.deployments[DEPLOYMENT_NAME].replica_states
    return {str(getattr(state, "value", state)): int(count) for state, count in states.items()}


def teacher_pool_actor_names(name: str = DEFAULT_POOL_NAME) -> list[str]:
    """The Ray actor names of the pool's replicas (namespace ``serve``), for supervision and tests."""
    import ray

    prefix = f"{REPLICA_ACTOR_PREFIX}{name}#{DEPLOYMENT_NAME}#"
    return sorted(actor["name"] for actor in ray.util.list_named_actors(all_namespaces=True)
                  if actor["namespace"] == SERVE_NAMESPACE and actor["name"].startswith(prefix))


def _retryable_errors() -> tuple[type[BaseException], ...]:
    from ray import exceptions as rex
    from ray.serve import exceptions as sex

    return (rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError,
            sex.ReplicaUnavailableError, sex.BackPressureError, TimeoutError)


def _cause(exc: BaseException) -> BaseException:
    """The error a replica raised, unwrapped from Ray's task error."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class _Call:
    """One request to the pool, re-sent after replica loss or timeout until it succeeds or runs out of tries."""

    def __init__(self, client: PooledTeacher, method: str, args: tuple[Any, ...], what: str) -> None:
        self.client = client
        self.method = method
        self.args = args
        self.what = what
        self.attempt = 0
        self.settled = False
        client._track(+1)
        self._send()

    def _send(self) -> None:
        self.sent_at = time.monotonic()
        self.response = getattr(self.client.handle, self.method).remote(*self.args)

    def wait(self) -> Any:
        try:
            return self._wait()
        finally:
            self.settle()

    def settle(self) -> None:
        """No longer count this request as in flight (once)."""
        if not self.settled:
            self.settled = True
            self.client._track(-1)

    def _wait(self) -> Any:
        retryable = _retryable_errors()
        while True:
            remaining = self.sent_at + self.client.request_timeout_s - time.monotonic()
            try:
                return self.response.result(timeout_s=max(remaining, 0.001))
            except Exception as exc:
                error = _cause(exc)
                if not isinstance(error, retryable) and not isinstance(exc, retryable):
                    raise self._failure(error) from exc
                if self.attempt >= self.client.max_retries:
                    raise self._failure(error, exhausted=True) from exc
                self._retry(error)

    def _retry(self, error: BaseException) -> None:
        if isinstance(error, TimeoutError):
            self.response.cancel()
        self.attempt += 1
        self.client._count_retry()
        time.sleep(self.client.retry_backoff_s * self.attempt)
        self._send()

    def _failure(self, error: BaseException, exhausted: bool = False) -> TeacherError:
        where = f"teacher pool {self.client.pool_name!r}, {self.what}"
        if exhausted:
            return TeacherError(f"{where}: no answer after {self.attempt + 1} tries, last error: "
                                f"{type(error).__name__}: {error}",
                                "check the pool's replicas (serve status), or raise request_timeout_s / max_retries")
        if isinstance(error, OdistError):
            return TeacherError(f"{where}: {error.what}", error.fix)
        return TeacherError(f"{where}: {type(error).__name__}: {error}", "see the replica's log for the traceback")


class PendingLabels:
    """Label requests in flight for a batch of frames; ``result()`` waits for all of them."""

    def __init__(self, client: PooledTeacher, frames: Sequence[Frame]) -> None:
        self._calls = [_Call(client, "label", (frame,), f"frame {frame.index}") for frame in frames]
        self._replies: list[LabelReply] | None = None

    def replies(self) -> list[LabelReply]:
        """The per-frame replies (labels, charged cost, batch size, replica), in frame order.

        A frame that cannot be labelled raises ``TeacherError`` naming it; the other requests are cancelled.
        """
        if self._replies is None:
            try:
                self._replies = [call.wait() for call in self._calls]
            except BaseException:
                self.cancel()
                raise
        return self._replies

    def result(self) -> TeacherResult:
        """Every frame's labels and the summed charged cost."""
        replies = self.replies()
        return TeacherResult(labels=[reply.labels for reply in replies],
                             seconds=sum(reply.seconds for reply in replies),
                             gflops=sum(reply.gflops for reply in replies))

    def cancel(self) -> None:
        """Withdraw the requests still in flight (their frames are then never labelled)."""
        for call in self._calls:
            call.response.cancel()
            call.settle()


class PooledTeacher(Teacher):
    """A ``Teacher`` that sends each frame to the teacher pool; picklable, so students carry it into actors.

    ``label`` blocks (use it from a synchronous actor or a thread); ``submit`` sends the requests and
    returns at once, so a student can keep inferring and collect the labels later.
    """

    name = "pool"

    def __init__(self, handle: DeploymentHandle, class_names: Sequence[str], *,
                 pool_name: str = DEFAULT_POOL_NAME, request_timeout_s: float = 60.0, max_retries: int = 3,
                 retry_backoff_s: float = 0.25, gflops_per_frame: float | None = None) -> None:
        super().__init__(class_names)
        self.handle = handle
        self.pool_name = pool_name
        self.request_timeout_s = request_timeout_s
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.retries = 0
        self.in_flight = 0  # label requests sent and not yet answered (this process's share of the queue)
        self._fixed_gflops = gflops_per_frame
        self._gflops: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_pool(cls, handle: DeploymentHandle, class_names: Sequence[str],
                 pool_config: TeacherPoolConfig, pool_name: str = DEFAULT_POOL_NAME,
                 gflops_per_frame: float | None = None) -> PooledTeacher:
        """A client with the pool's timeout and retry settings."""
        return cls(handle, class_names, pool_name=pool_name, request_timeout_s=pool_config.request_timeout_s,
                   max_retries=pool_config.max_retries, retry_backoff_s=pool_config.retry_backoff_s,
                   gflops_per_frame=gflops_per_frame)

    def submit(self, frames: Sequence[Frame]) -> PendingLabels:
        """Send one request per frame, all at once."""
        return PendingLabels(self, frames)

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        return self.submit(frames).result()

    def gflops_per_frame(self, height: int, width: int) -> float:
        """The pool teacher's cost per frame of this size, asked once per size (or fixed at construction)."""
        if self._fixed_gflops is not None:
            return float(self._fixed_gflops)
        key = (int(height), int(width))
        if key not in self._gflops:
            self._gflops[key] = float(_Call(self, "gflops_per_frame", key, f"cost of a {height}x{width} frame").wait())
        return self._gflops[key]

    def _count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def _track(self, change: int) -> None:
        with self._lock:
            self.in_flight += change

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class PoolTeacherFactory:
    """Gives each stream the pool's teacher (the ``TeacherFactory`` of student actors); picklable.

    A stream with a ``replay:`` teacher reads its own labels, so it gets a local replay teacher instead.
    A stream whose classes differ from the pool's is refused: the pool's labels would mean other classes.
    """

    def __init__(self, handle: DeploymentHandle, class_names: Sequence[str], pool_config: TeacherPoolConfig,
                 pool_name: str = DEFAULT_POOL_NAME, gflops_per_frame: float | None = None) -> None:
        self.teacher = PooledTeacher.for_pool(handle, class_names, pool_config, pool_name, gflops_per_frame)

    def __call__(self, config: OdistConfig) -> Teacher:
        if config.teacher.name.startswith("replay"):
            return build_teacher(config.teacher.name, config.teacher, config.classes, config.device)
        if tuple(config.classes) != self.teacher.class_names:
            raise TeacherError(
                f"teacher pool {self.teacher.pool_name!r} labels classes {list(self.teacher.class_names)}, "
                f"this stream wants {list(config.classes)}",
                "run streams with other classes against a pool started with those classes")
        return self.teacher

    def requests_in_flight(self) -> int:
        """Label requests this process has sent to the pool and still waits for."""
        return self.teacher.in_flight
