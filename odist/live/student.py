"""One live camera's student: its ``StreamPipeline`` run by the real-time feed, until stopped; resume.

``LiveStudent.run`` restores the camera's last commit and runs the pipeline with ``RealTimeFeed``
(``odist.live.realtime``): the newest decoded frame each time, keyframe labels awaited in the
background, a commit every ``commit_every_s`` seconds. No Ray in here: the fleet layer places and
restarts it.

Records are those of archive streams, with live meanings: ``timestamp`` is the wall-clock capture time
(unix seconds); a ``keyframe`` row is the frame at which a keyframe's labels were learned (its
``updates``, ``keyframe_accuracy`` and ``teacher_seconds``), and its ``miou`` / ``miou_foreground`` are
the student's score on that keyframe before learning from it (NaN on other rows).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from odist.config import OdistConfig
from odist.distill.distiller import OnlineDistiller
from odist.distill.pipeline import TeacherSource, config_for_stream, prepare_torch
from odist.errors import LeaseError, OdistError
from odist.live.cameras import CameraSpec
from odist.live.realtime import NEVER, RealTimeFeed, live_settings
from odist.live.status import CameraStatus, LatencyWindow
from odist.models.teachers import Teacher
from odist.redact import redact
from odist.run_config import LiveOptions
from odist.states import CameraState
from odist.storage.checkpoint import weight_digest
from odist.storage.documents import LIVE_STATUS
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store

__all__ = ["LIVE_STATUS", "NEVER", "LiveOptions", "LiveStudent", "live_settings"]
log = logging.getLogger(__name__)


class LiveStudent:
    """Runs one camera until stopped; ``status()`` may be called from any thread while it runs."""

    def __init__(self, camera: CameraSpec, out: str, config: OdistConfig, teacher: TeacherSource,
                 options: LiveOptions | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.camera = camera
        self.out = out
        self.config = config_for_stream(config, camera.overrides)
        self.teacher_source = teacher
        self.options = options or LiveOptions()
        self.clock = clock
        self._status = CameraStatus(camera.id)
        self._lock = threading.Lock()
        self.latency = LatencyWindow()
        self.session: RealTimeFeed | None = None

    def weights_digest(self) -> str:
        """The student's current ``weight_digest`` ("" before the run starts): the digest a warm start records."""
        return "" if self.session is None else self.weights_digest_of(self.session.distiller)

    @staticmethod
    def weights_digest_of(distiller: OnlineDistiller) -> str:
        return weight_digest(distiller.student.state_dict())

    def status(self) -> CameraStatus:
        with self._lock:
            return replace(self._status)

    def run(self, stop: threading.Event, duration_s: float | None = None) -> CameraStatus:
        """Process the camera until ``stop`` is set or ``duration_s`` has passed; commit and return the status.

        A source that gives up (undecodable stream, unreachable for ``give_up_after_s``) ends the run as
        ``failed`` with its error, after committing what was processed.
        """
        if stop.is_set():  # stopped while its actor was starting: it has processed nothing
            self._update(state=CameraState.STOPPED)
            return self.status()
        prepare_torch(self.config)
        area = StreamArea(open_store(self.out), self.camera.id)
        storage = self.config.storage  # a restart waits out the lease its crashed predecessor left
        try:
            area.writer_lease(storage.lease(storage.crash_wait_s)).acquire()
        except LeaseError as exc:  # another writer has this camera's stream
            self._update(state=CameraState.FAILED, error=str(exc))
            return self.status()
        try:
            return self._run(area, stop, duration_s)
        finally:
            area.lease.release()

    def _run(self, area: StreamArea, stop: threading.Event, duration_s: float | None) -> CameraStatus:
        teacher = self.teacher_source if isinstance(self.teacher_source, Teacher) else self.teacher_source()
        if stop.is_set():  # stopped while its teacher loaded: nothing processed, nothing to commit
            self._update(state=CameraState.STOPPED)
            return self.status()
        try:
            session = self.session = RealTimeFeed(self, area, teacher)
        except OdistError as exc:  # e.g. the camera's credentials cannot be read
            self._update(state=CameraState.FAILED, error=str(exc))
            area.fail(str(exc))
            return self.status()
        session.stop, session.deadline = stop, None if duration_s is None else self.clock() + duration_s
        try:
            session.pipeline.run(session, session.first_index)
        except OdistError as exc:
            self._update(state=CameraState.FAILED, error=str(exc))
            self._close(session, failed=str(exc))
            return self.status()
        except BaseException as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
            self._update(state=CameraState.FAILED, error=error)
            self._close(session, failed=error)
            raise
        self._close(session)
        self._update(state=CameraState.STOPPED)
        return self.status()

    def _close(self, session: RealTimeFeed, failed: str | None = None) -> None:
        """Stop the source, commit what was processed, and write the summary (or the failure)."""
        session.close()
        if failed is not None:
            self._update(state=CameraState.FAILED, error=failed)
        try:
            session.commit()
            if failed is not None:
                session.area.fail(failed)
            elif session.distiller.ledger.frames:
                session.pipeline.finish(session.summary())
        except OdistError as exc:
            log.error("camera %s: could not commit on stop: %s", self.camera.id, exc)

    def _update(self, **fields: Any) -> None:
        with self._lock:
            for key, value in fields.items():
                setattr(self._status, key, value)
