"""The fleet's progress line on stderr: streams done / running / failed, frames and frames/s.

While ``frames`` stays at 0, ``starting`` counts the streams whose worker process Ray is still starting
(importing torch and odist: tens of seconds on a busy machine) and ``loading`` those whose worker is up
but has no frame yet (it builds the teacher, opens the video, restores the last commit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class FleetCounts:
    """What the driver knows at one moment."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0
    retries: int = 0
    frames: int = 0  # frames processed by this job so far, finished streams and running ones
    teacher_queue: int | None = None  # label requests waiting on a shared teacher pool (None: no pool)
    starting: int = 0  # running streams whose worker process Ray is still starting (it has not answered yet)
    loading: int = 0  # running streams with no frame yet: their worker builds the teacher, opens the video, resumes

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped


class FleetProgress:
    """A tqdm line counting finished streams, with running/failed/frames/s (a no-op when disabled).

    ``extras`` returns more fields to show (e.g. a teacher pool's queue depth and replicas).
    """

    def __init__(self, total: int, enabled: bool = True,
                 extras: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.total, self.enabled, self.extras = total, enabled, extras
        self.started = time.perf_counter()
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="streams", unit="stream", dynamic_ncols=True)

    def update(self, counts: FleetCounts) -> None:
        """Show ``counts``."""
        if self.bar is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        fields: dict[str, Any] = {"running": counts.running, "failed": counts.failed,
                                  "frames": counts.frames, "fps": f"{counts.frames / elapsed:.1f}"}
        if counts.starting:
            fields["starting"] = counts.starting
        if counts.loading:
            fields["loading"] = counts.loading
        if counts.skipped:
            fields["skipped"] = counts.skipped
        if counts.retries:
            fields["retries"] = counts.retries
        if counts.teacher_queue is not None:
            fields["teacher_queue"] = counts.teacher_queue
        if self.extras is not None:
            try:
                fields.update(self.extras())
            except Exception as exc:  # a display must never stop the job
                fields["extras"] = type(exc).__name__
        self.bar.set_postfix(fields, refresh=False)
        self.bar.update(counts.finished - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
