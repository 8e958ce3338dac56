"""Starting, watching and stopping the teacher pool's Serve application."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from odist.config import PerformanceConfig, TeacherConfig
from odist.errors import TeacherError
from odist.fleet.teacher_pool.config import (
    DEFAULT_POOL_NAME,
    DEPLOYMENT_NAME,
    REPLICA_ACTOR_PREFIX,
    SERVE_NAMESPACE,
    TeacherPoolConfig,
)
from odist.fleet.teacher_pool.replica import TeacherReplica


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
                          None if performance is None else dataclasses.asdict(performance),
                          pool_config.batching)
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


