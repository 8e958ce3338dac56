"""The Ray runtime both archive jobs and live cameras use: the session, worker resources, the shared teacher.

``connect`` joins (or starts) Ray, ``worker_options`` sizes a student actor, and ``start_shared_teacher``
/ ``stop_shared_teacher`` run the teacher pool every student asks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import ray

from odist.config import OdistConfig
from odist.errors import ConfigError, raise_terminated
from odist.fleet.local_ray import init_local_ray
from odist.fleet.prewarm import worker_runtime_env
from odist.run_config import PoolConfig

if TYPE_CHECKING:
    from odist.models.teachers import Teacher

log = logging.getLogger(__name__)


class TeacherFactory(Protocol):
    """Builds (or connects to) the teacher of a stream, given the stream's own config. Must be picklable."""

    def __call__(self, config: OdistConfig) -> Teacher: ...


class LocalTeacherFactory:
    """Builds the configured teacher inside the worker with ``build_teacher``.

    The last teacher is kept while the next stream's teacher settings are the same, so a model-based
    teacher is loaded once per worker rather than once per stream; a ``replay:`` teacher is per stream.
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._teacher: Teacher | None = None

    def __call__(self, config: OdistConfig) -> Teacher:
        from odist.models.teachers import build_teacher

        key = json.dumps([config.to_dict()["teacher"], config.classes, config.device, config.performance.teacher_amp],
                         sort_keys=True, default=str)
        if key != self._key or self._teacher is None:
            self._teacher = build_teacher(config.teacher.name, config.teacher, config.classes, config.device,
                                          performance=config.performance)
            self._key = key
        return self._teacher

    def __getstate__(self) -> dict[str, Any]:
        return {"_key": None, "_teacher": None}


def worker_options(student_gpus: float = 0.0, student_cpus: float | None = None) -> dict[str, float]:
    """Actor resources: a GPU share with no CPU by default on GPU clusters, one CPU each on CPU clusters.

    A fractional GPU actor must ask for ``num_cpus=0`` (or a fraction) to pack many per GPU without
    needing a CPU slot each; ``student_cpus`` overrides either default.
    """
    cpus = (0.0 if student_gpus > 0 else 1.0) if student_cpus is None else float(student_cpus)
    return {"num_gpus": float(student_gpus), "num_cpus": cpus}


def start_shared_teacher(pool_config: PoolConfig, config: OdistConfig
                         ) -> tuple[TeacherFactory, Callable[[], Mapping[str, Any]]]:
    """Start the shared teacher pool; returns the workers' teacher factory and a progress probe."""
    from odist.fleet import teacher_pool as tp

    if pool_config.implementation == "actors":
        handle = tp.start_actor_pool(pool_config, config.teacher.name, config.teacher, config.classes, config.device,
                                     performance=config.performance)
        factory = tp.PoolTeacherFactory(handle, config.classes, pool_config)
        return factory, lambda: {"replicas": len(tp.actor_pool_names())}
    handle = tp.start_teacher_pool(pool_config, config.teacher.name, config.teacher, config.classes, config.device,
                                   performance=config.performance)
    factory = tp.PoolTeacherFactory(handle, config.classes, pool_config)
    return factory, lambda: {"replicas": tp.teacher_pool_replicas().get("RUNNING", 0)}


def stop_shared_teacher(pool_config: PoolConfig) -> None:
    """Stop the pool ``start_shared_teacher`` started with ``pool_config``."""
    from odist.fleet import teacher_pool as tp

    try:
        if pool_config.implementation == "actors":
            tp.stop_actor_pool()
        else:
            tp.stop_teacher_pool()
    except Exception:  # the outcome is decided; Ray shutdown removes what is left
        log.warning("could not stop the teacher pool cleanly", exc_info=True)


def connect(address: str | None = None, *, prewarm: bool = False) -> bool:
    """Connect to Ray (a new local instance when ``address`` is None); True when this call started it.

    ``prewarm``: this job's workers run the pre-warm hook as they start (``odist.fleet.prewarm``). A Ray
    this process had already joined keeps the runtime env it was given.
    """
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "logging_level": logging.WARNING}
    if prewarm:
        kwargs["runtime_env"] = worker_runtime_env(prewarm)
    if address is not None:
        _check_reachable(address)
    try:
        if address is None:
            init_local_ray(**kwargs)  # loopback only, no dashboard, nothing left behind (odist.fleet.local_ray)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot connect to Ray at {address}: {first_line(exc)}",
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within: SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``), as Ctrl-C does.

    It replaces the handlers ``ray.init`` installs (a C++ stack trace on stderr, then exit 1); call it
    after ``connect``. Outside the main thread it does nothing (Python only signals the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
