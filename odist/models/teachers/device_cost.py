"""What the paper's teacher costs per frame on the student's device, for a measured speed-up that compares
like with like when the teacher itself did not run there (the oracle, replay, a teacher pool).

The configured Mask R-CNN (``teacher.arch``, random weights: they cost the same as trained ones) labels a
random frame of the stream's size on the student's device: one warm-up pass, then the timed ones. The figure
is cached as one small JSON file per device, frame size, arch and torch version under ``$ODIST_CACHE``
(default ``$XDG_CACHE_HOME/odist``, else ``~/.cache/odist``) in ``teacher-cost/``; the first process to
measure holds a lock, so workers of one machine measure once. ``teacher.device_ms`` skips all of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from odist.config import OdistConfig, TeacherConfig
from odist.storage.atomic import write_json_atomic
from odist.video.frame import Frame

CACHE_ENV = "ODIST_CACHE"
TIMED_PASSES = 2
ORIGINS = ("this run", "measured", "cached", "configured")


@dataclass(frozen=True)
class DeviceTeacherCost:
    """The teacher's seconds per frame on ``device`` at ``height`` x ``width``, and where the figure came from.

    ``origin``: ``this run`` (the stream's own teacher ran on the student's device: its wall time per frame),
    ``measured`` (measured now and cached in ``file``), ``cached`` (read from ``file``) or ``configured``
    (``teacher.device_ms``). ``charged_seconds_per_frame`` is what the stream's teacher charged or took
    elsewhere per frame (the paper's GPU figure for the oracle and replay), None when it ran here.
    """

    seconds_per_frame: float
    origin: str
    device: str
    height: int
    width: int
    arch: str
    torch: str
    file: str | None = None
    charged_seconds_per_frame: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The figure, its origin and ``description`` (``describe``), as ``summary.json`` keeps them."""
        return {**asdict(self), "description": self.describe()}

    def describe(self) -> str:
        """``teacher 9.1 s/frame on cpu (measured once, cached in FILE)``: the figure and its origin in words
        (the same words whether this stream measured it or read it, so the report groups them)."""
        where = {"this run": "its own time in this run", "measured": f"measured once, cached in {self.file}",
                 "cached": f"measured once, cached in {self.file}", "configured": "teacher.device_ms"}[self.origin]
        return f"teacher {self.seconds_per_frame:.3g} s/frame on {self.device} ({where})"


def cache_dir() -> Path:
    """Where measured teacher costs are kept: ``$ODIST_CACHE/teacher-cost``, else the user's cache folder."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "odist")
    return Path(root) / "teacher-cost"


def device_teacher_cost(config: OdistConfig, height: int, width: int, *, ran_here: float | None = None,
                        charged: float | None = None) -> DeviceTeacherCost:
    """The teacher's per-frame cost on ``config.device`` at this frame size.

    ``ran_here``: the stream's own teacher's measured seconds per frame when it ran on the student's device
    (used as is). Else ``teacher.device_ms`` when set, else the cache, else a measurement (then cached).
    """
    device = torch.device(config.device).type
    common = {"device": device, "height": int(height), "width": int(width), "arch": config.teacher.arch,
              "torch": str(torch.__version__), "charged_seconds_per_frame": charged}
    if ran_here is not None and math.isfinite(ran_here):
        return DeviceTeacherCost(ran_here, "this run", **{**common, "charged_seconds_per_frame": None})
    if config.teacher.device_ms is not None:
        return DeviceTeacherCost(config.teacher.device_ms / 1000.0, "configured", **common)
    path = cache_dir() / cache_name(device, height, width, config.teacher.arch)
    cached = read_cached(path)
    if cached is not None:
        return DeviceTeacherCost(cached, "cached", file=str(path), **common)
    with _locked(path):
        cached = read_cached(path)  # another worker may have measured it while this one waited
        if cached is not None:
            return DeviceTeacherCost(cached, "cached", file=str(path), **common)
        seconds = measure_seconds_per_frame(config.teacher, config.classes, config.device, height, width)
        write_json_atomic(path, {**{k: v for k, v in common.items() if k != "charged_seconds_per_frame"},
                                 "seconds_per_frame": seconds, "passes": TIMED_PASSES, "measured_at": time.time()})
    return DeviceTeacherCost(seconds, "measured", file=str(path), **common)


def cache_name(device: str, height: int, width: int, arch: str) -> str:
    """The cache file of one device, frame size, Mask R-CNN arch and torch version."""
    version = re.sub(r"[^0-9A-Za-z.]+", "_", torch.__version__)
    return f"maskrcnn-{arch}_{device}_{int(width)}x{int(height)}_torch-{version}.json"


def read_cached(path: Path) -> float | None:
    """The cached seconds per frame in ``path``; None when absent or unreadable (it is then measured again)."""
    try:
        value = json.loads(path.read_text())["seconds_per_frame"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) if ok else None


def measure_seconds_per_frame(teacher: TeacherConfig, class_names: Sequence[str], device: str, height: int,
                              width: int, **model_options: int) -> float:
    """Median wall time of ``TIMED_PASSES`` labellings of one random frame by the configured Mask R-CNN
    (random weights) on ``device``, after one warm-up pass."""
    from odist.models.teachers.maskrcnn import MaskRCNNTeacher

    config = replace(teacher, weights="random", batch_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights: intended, they cost what trained ones do
        model = MaskRCNNTeacher(config, class_names, device, **model_options)
    image = np.random.default_rng(0).integers(0, 256, (int(height), int(width), 3), dtype=np.uint8)
    frame = [Frame(index=0, image=image)]
    model.label(frame)
    return float(np.median([model.label(frame).seconds for _ in range(TIMED_PASSES)]))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` (the folder is created), so one process of a machine measures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
