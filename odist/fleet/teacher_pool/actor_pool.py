"""The teacher pool as plain Ray actors (``pool.implementation: actors``), behind the same ``PooledTeacher``.

A fixed number of ``TeacherActor`` replicas (``PoolConfig.fixed_replicas``), each the same
``LabellingReplica`` a Serve replica is, with the adaptive ``FrameBatcher``. ``ActorPoolHandle`` stands in
for Serve's ``DeploymentHandle``: ``handle.label.remote(frame)`` goes to the replica with the fewest of this
process's requests in flight and returns a response with ``result(timeout_s)`` and ``cancel()``. There is no
router holding requests back and no autoscaling; a replica that dies is restarted by Ray, and the
requests it held fail with ``RayActorError``, which ``PooledTeacher`` retries; the handle then sends
nothing to that replica for ``LOST_REPLICA_PAUSE_S`` while another one is up, so the retries go elsewhere.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ray

from odist.config import PerformanceConfig, TeacherConfig
from odist.errors import TeacherError
from odist.fleet.teacher_pool.config import DEFAULT_POOL_NAME, TeacherPoolConfig
from odist.fleet.teacher_pool.replica import LabellingReplica


class TeacherActor(LabellingReplica):
    """One replica of the actor pool (an async Ray actor)."""


# How long a handle leaves a replica out after it failed a request (Ray restarts it meanwhile).
LOST_REPLICA_PAUSE_S = 10.0


def actor_name(pool: str, index: int) -> str:
    """The Ray actor name of replica ``index`` of pool ``pool``."""
    return f"{pool}#actor-{index}"


class _ActorResponse:
    """One request to one replica; frees its slot in the handle's count once answered or cancelled."""

    def __init__(self, handle: ActorPoolHandle, index: int, ref: ray.ObjectRef) -> None:
        self._handle, self._index, self._ref = handle, index, ref
        self._open = True

    def result(self, timeout_s: float | None = None) -> Any:
        try:
            value = ray.get(self._ref, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError as exc:
            raise TimeoutError(f"no answer from replica {self._index} within {timeout_s} s") from exc
        except ray.exceptions.RayActorError:
            self._release()
            self._handle._lost(self._index)
            raise
        except BaseException:
            self._release()
            raise
        self._release()
        return value

    def cancel(self) -> None:
        if self._open:
            ray.cancel(self._ref)
        self._release()

    def _release(self) -> None:
        if self._open:
            self._open = False
            self._handle._finished(self._index)


class _Method:
    def __init__(self, handle: ActorPoolHandle, name: str) -> None:
        self._handle, self._name = handle, name

    def remote(self, *args: Any) -> _ActorResponse:
        return self._handle._send(self._name, args)


class ActorPoolHandle:
    """The actor pool's replicas, called like a Serve ``DeploymentHandle``; picklable (each process that
    unpickles it counts its own requests in flight)."""

    def __init__(self, actors: Sequence[Any]) -> None:
        self.actors = list(actors)
        self._in_flight = [0] * len(self.actors)
        self._left_out_until = [0.0] * len(self.actors)
        self._lock = threading.Lock()

    @property
    def label(self) -> _Method:
        return _Method(self, "label")

    @property
    def gflops_per_frame(self) -> _Method:
        return _Method(self, "gflops_per_frame")

    def _send(self, method: str, args: tuple[Any, ...]) -> _ActorResponse:
        with self._lock:
            now = time.monotonic()
            up = [i for i, until in enumerate(self._left_out_until) if until <= now] or range(len(self.actors))
            index = min(up, key=self._in_flight.__getitem__)
            self._in_flight[index] += 1
        ref = getattr(self.actors[index], method).remote(*args)
        return _ActorResponse(self, index, ref)

    def _finished(self, index: int) -> None:
        with self._lock:
            self._in_flight[index] -= 1

    def _lost(self, index: int) -> None:
        """Replica ``index`` failed a request: leave it out for a while."""
        with self._lock:
            self._left_out_until[index] = time.monotonic() + LOST_REPLICA_PAUSE_S

    def __getstate__(self) -> dict[str, Any]:
        return {"actors": self.actors}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["actors"])  # type: ignore[misc]


def start_actor_pool(pool_config: TeacherPoolConfig, teacher_spec: str, teacher_config: TeacherConfig,
                     class_names: Sequence[str], device: str = "cpu", name: str = DEFAULT_POOL_NAME,
                     setup: Callable[[], object] | None = None,
                     performance: PerformanceConfig | None = None) -> ActorPoolHandle:
    """Start ``pool_config.fixed_replicas()`` replicas and wait up to ``start_timeout_s`` until each runs;
    a teacher that cannot be built, or replicas that cannot be placed, fail here with a ``TeacherError``."""
    pool_config.validate()
    remote = ray.remote(TeacherActor)
    actors = [remote.options(name=actor_name(name, i), max_restarts=-1, max_task_retries=0,
                             **pool_config.actor_options()).remote(
        teacher_spec, dataclasses.asdict(teacher_config), list(class_names), device, pool_config.max_batch_size,
        pool_config.batch_wait_timeout_s, setup, None if performance is None else dataclasses.asdict(performance),
        actor_name(name, i)) for i in range(pool_config.fixed_replicas())]
    try:
        ray.get([actor.class_names.remote() for actor in actors], timeout=pool_config.start_timeout_s)
    except ray.exceptions.GetTimeoutError:
        stop_actor_pool(name, len(actors))
        raise TeacherError(
            f"teacher pool {name!r} ({teacher_spec}) is not running after {pool_config.start_timeout_s:g} s",
            f"each replica asks for {pool_config.actor_options()}: make sure the cluster has that much free "
            "for min_replicas replicas, lower the shares, or raise start_timeout_s") from None
    except ray.exceptions.RayError as exc:
        stop_actor_pool(name, len(actors))
        cause = getattr(exc, "cause", None) or exc
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        raise TeacherError(f"teacher pool {name!r} ({teacher_spec}) failed to start: {(lines or [''])[-1]}",
                           "check the teacher spec, its weights and the replica logs") from None
    return ActorPoolHandle(actors)


def stop_actor_pool(name: str = DEFAULT_POOL_NAME, replicas: int | None = None) -> None:
    """Kill the pool's replicas (all of its named actors, or the first ``replicas``)."""
    for actor_id in actor_pool_names(name) if replicas is None else [actor_name(name, i) for i in range(replicas)]:
        try:
            ray.kill(ray.get_actor(actor_id), no_restart=True)
        except ValueError:  # already gone
            continue


def actor_pool_names(name: str = DEFAULT_POOL_NAME) -> list[str]:
    """The Ray actor names of the actor pool's replicas in this namespace."""
    prefix = actor_name(name, 0)[:-1]
    return sorted(actor for actor in ray.util.list_named_actors(all_namespaces=False) if actor.startswith(prefix))
