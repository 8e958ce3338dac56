"""Pre-warmed Ray workers: torch and odist imported, and the student's kernels run once, before any stream.

A fresh Ray worker process pays for ``import torch`` and odist's modules, and its first student forward and
update pay for setting up their kernels (oneDNN primitives, autograd). Without a hook that bill lands
on the worker's first stream; with :data:`SETUP_HOOK` as the job's ``worker_process_setup_hook``
(``--set fleet.prewarm_workers=true``) every worker process pays it as it starts.

Off by default, by measurement (``bench/fleet_throughput.py``, docs/benchmarks/fleet-throughput.md): a local Ray
prestarts one idle worker per CPU before the job exists, and a job whose runtime env carries a setup hook
cannot use them, so its actors wait for new processes that import everything before the actor starts.
The start-up went from 5.6 s to 7.2 s. What shortened it is importing less (Mask R-CNN's torchvision only
where a Mask R-CNN teacher is built).
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

SETUP_HOOK = "odist.fleet.prewarm.prewarm_worker"
# A tiny frame: big enough for the student's deepest level (JITNet subsamples 32x), small enough to cost ms.
WARM_SIZE = (64, 64)
_warm_seconds: float | None = None


def worker_runtime_env(prewarm: bool) -> dict[str, Any]:
    """The job-level runtime env odist passes to ``ray.init``: the pre-warm hook, or nothing."""
    return {"worker_process_setup_hook": SETUP_HOOK} if prewarm else {}


def prewarm_worker() -> float:
    """Import what a stream needs and run one tiny student forward and update; returns the seconds it took.

    Runs once per process (a second call returns the first one's time). It must never stop a worker from
    starting: any error is logged and the worker starts cold.
    """
    global _warm_seconds
    if _warm_seconds is not None:
        return _warm_seconds
    started = time.perf_counter()
    try:
        _warm_up()
    except Exception:  # a cold worker still works; only its first stream is slower
        log.warning("could not pre-warm this worker; its first stream pays the start-up", exc_info=True)
    _warm_seconds = time.perf_counter() - started
    return _warm_seconds


def prewarmed_seconds() -> float | None:
    """How long this process's pre-warm took, or None when it was not pre-warmed."""
    return _warm_seconds


def _warm_up() -> None:
    import torch

    import odist.distill.pipeline  # the stream pipeline and everything it imports
    import odist.fleet.student_actor  # noqa: F401
    from odist.config import load_config
    from odist.distill.learning import new_student
    from odist.models.acceleration import to_channels_last

    config = load_config(environ={}, overrides=["student.width=0.25"])
    student = new_student(config)
    if config.performance.channels_last:
        to_channels_last(student)
    image = torch.rand(1, 3, *WARM_SIZE)
    if config.performance.channels_last:
        image = to_channels_last(image)
    student.train()
    student(image).sum().backward()
    with torch.inference_mode():
        student.eval()
        student(image)
