"""Capacity planning: how many GPUs, student shares and teacher replicas a fleet of cameras needs.

``profiles`` holds per-GPU costs (measured ones from ``bench/results/gpu_*.json`` when present,
reference estimates otherwise), ``workload`` the keyframe and update rates, ``capacity`` the arithmetic
and ``command`` the ``odist plan`` command. The package is also the library's plan call:
``odist.plan(cameras=..., fps=..., gpu=...)`` is ``odist.plan.api.plan``.
"""

from odist._callable import make_callable
from odist.plan.api import plan as _plan
from odist.plan.capacity import Plan, PlanRequest, make_plan
from odist.plan.profiles import GpuProfile, load_profiles
from odist.plan.workload import Workload, default_workload

__all__ = ["GpuProfile", "Plan", "PlanRequest", "Workload", "default_workload", "load_profiles", "make_plan"]

make_callable(__name__, _plan)
