"""``odist.live(...)``: run the cameras of a CAMERAS.yaml until stopped, the library form of ``odist live``.

How cameras are read is the config tree's ``source`` section (size, frame rate) and how they are committed its
``live`` section (or the ``live`` argument),
where they run its ``fleet`` section, and a shared teacher pool its ``pool`` section (when enabled).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from odist import api_types
from odist.config import OdistConfig
from odist.distill.arguments import resolve_config
from odist.fleet.runtime import TeacherFactory
from odist.live.status import CameraStatus
from odist.live.supervisor import LiveJob, run_live
from odist.live.teacher_choice import live_teacher
from odist.models.teachers.choice import prepare_weights
from odist.run_config import LiveConfig, LiveOptions


def live(cameras: str | os.PathLike[str], *, out: str, config: OdistConfig | str | os.PathLike[str] | None = None,
         live: LiveConfig | None = None, teacher: str | None = None, device: str | None = None,
         overrides: Sequence[str] = (), duration: float | None = None, stop: threading.Event | None = None,
         on_status: Callable[[list[CameraStatus]], None] | None = None, handle_signals: bool = False,
         teacher_factory: TeacherFactory | None = None) -> list[CameraStatus]:
    """Run one student per camera of ``cameras`` into ``out`` until ``stop`` is set or ``duration`` seconds
    pass (``handle_signals``: SIGINT / SIGTERM stop too); every camera's final status.

    Without ``teacher_factory`` the teacher is the configured one if it labels live video, else Mask R-CNN
    when ``teacher.weights`` is set (``live_teacher``); the teacher and the camera list are checked before
    Ray starts."""
    cameras = api_types.location("cameras", cameras, "the path of a CAMERAS.yaml")
    out = api_types.location("out", out, "a run root: a folder, file:// or s3:// URI")
    api_types.duration("duration", duration)
    api_types.flag("handle_signals", handle_signals)
    resolved = resolve_config(config, overrides, teacher=teacher, device=device)
    if live is not None:
        resolved = dataclasses.replace(resolved, live=live).validate()
    if teacher_factory is None:
        resolved = live_teacher(resolved)
        prepare_weights(resolved)  # fetched or found in torch's cache before Ray starts
    settings, fleet = resolved.live, resolved.fleet
    job = LiveJob(out, resolved, LiveOptions.of(resolved), student_gpus=fleet.student_gpus,
                  student_cpus=fleet.student_cpus, teacher_factory=teacher_factory)
    return run_live(Path(cameras), job, duration_s=duration, address=fleet.address,
                    teacher_pool=resolved.pool if resolved.pool.enabled else None, stop=stop, on_status=on_status,
                    status_every_s=settings.status_every_s, handle_signals=handle_signals)
