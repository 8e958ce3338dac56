"""The students' side of the pool: ``PooledTeacher`` sends frames and retries lost requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ray.serve.handle import DeploymentHandle

from odist.config import OdistConfig
from odist.errors import OdistError, TeacherError
from odist.fleet.teacher_pool.config import (
    DEFAULT_POOL_NAME,
    TeacherPoolConfig,
)
from odist.fleet.teacher_pool.replica import LabelReply
from odist.models.teachers.base import Teacher, TeacherResult
from odist.models.teachers.registry import build_teacher
from odist.video.frame import Frame

if TYPE_CHECKING:
    from odist.fleet.teacher_pool.actor_pool import ActorPoolHandle

    PoolHandle = DeploymentHandle | ActorPoolHandle


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
        self.first_sent_at = self.sent_at

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
                if self._restarting(error):
                    self._wait_for_restart()
                    continue
                if self.attempt >= self.client.max_retries:
                    raise self._failure(error, exhausted=True) from exc
                self._retry(error)

    def _restarting(self, error: BaseException) -> bool:
        """A replica Ray is restarting refused the request: wait for it within the request timeout, without
        spending a try (a restart takes longer than the tries' backoff)."""
        from ray.exceptions import ActorUnavailableError

        return isinstance(error, ActorUnavailableError) \
            and time.monotonic() - self.first_sent_at < self.client.request_timeout_s

    def _wait_for_restart(self) -> None:
        self._resend_after(min(self.client.retry_backoff_s * 4, 1.0))

    def _retry(self, error: BaseException) -> None:
        if isinstance(error, TimeoutError):
            self.response.cancel()
        self.attempt += 1
        self._resend_after(self.client.retry_backoff_s * self.attempt)

    def _resend_after(self, delay_s: float) -> None:
        self.client._count_retry()
        time.sleep(delay_s)
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

    def __init__(self, handle: PoolHandle, class_names: Sequence[str], *,
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
    def for_pool(cls, handle: PoolHandle, class_names: Sequence[str],
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

    def __init__(self, handle: PoolHandle, class_names: Sequence[str], pool_config: TeacherPoolConfig,
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
