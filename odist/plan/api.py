"""``odist.plan(...)``: size a cluster for N cameras, the library form of ``odist plan``."""

from __future__ import annotations

import os
from pathlib import Path

from odist import api_types
from odist.errors import ConfigError
from odist.plan.capacity import (
    DEFAULT_HEADROOM,
    DEFAULT_STUDENT_GPUS,
    DEFAULT_TEACHER_BATCH,
    Plan,
    PlanRequest,
    make_plan,
)
from odist.plan.profiles import RESULTS_ENV, find_profile, find_results, load_profiles
from odist.plan.workload import default_workload


def plan(*, cameras: int, fps: float, gpu: str, width: int = 1280, height: int = 720,
         keyframe_rate: float | None = None, student_gpus: float = DEFAULT_STUDENT_GPUS,
         teacher_batch: int = DEFAULT_TEACHER_BATCH, headroom: float = DEFAULT_HEADROOM, gpus_per_node: int = 1,
         results: str | os.PathLike[str] | None = None) -> Plan:
    """The GPUs, student shares and teacher replicas ``cameras`` cameras at ``fps`` need on GPU type ``gpu``.

    Measured costs come from ``results`` (a folder of ``bench/results`` JSON files), else ``$ODIST_RESULTS``,
    else the checkout's ``bench/results``; without any, reference estimates (the plan says which it used).
    """
    api_types.whole("cameras", cameras, optional=False)
    api_types.text("gpu", gpu)
    for name, value in (("width", width), ("height", height), ("teacher_batch", teacher_batch),
                        ("gpus_per_node", gpus_per_node)):
        api_types.whole(name, value, optional=False)
    for name, value in (("fps", fps), ("student_gpus", student_gpus), ("headroom", headroom)):
        api_types.number(name, value, optional=False)
    api_types.number("keyframe_rate", keyframe_rate)
    if results is not None:
        api_types.location("results", results, "a folder of bench/results JSON files or None")
    folder = find_results(results)
    if results is not None and not Path(results).is_dir():
        raise ConfigError(f"results {results} is not a folder", "pass the folder of bench/results/*.json")
    request = PlanRequest(cameras=cameras, fps=fps, gpu=gpu, width=width, height=height, student_gpus=student_gpus,
                          teacher_batch=teacher_batch, headroom=headroom, gpus_per_node=gpus_per_node).validate()
    made = make_plan(request, find_profile(load_profiles(folder), gpu), default_workload(folder, keyframe_rate))
    if folder is None:
        made.notes.append(f"no benchmark results found (an installed odist carries none): pass --results DIR "
                          f"or set {RESULTS_ENV} to use measured costs")
    return made
