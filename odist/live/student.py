"""One live camera's student: a live ``StreamSession`` over the camera's newest frames, until stopped; resume.

``LiveStudent.run`` prepares the camera's session (restoring its last commit) and runs it over
``RealTimeFeed`` (``odist.live.realtime``): the newest decoded frame each time, keyframe labels awaited in
the background, a commit every ``commit_every_s`` seconds. No Ray in here: the fleet layer places and
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
from odist.distill.pipeline import config_for_stream, prepare_torch
from odist.distill.session import StreamSession, TeacherSource
from odist.errors import LeaseError, OdistError
from odist.live.cameras import CameraSpec
from odist.live.realtime import LIVE_RESUME_FIX, NEVER, RealTimeFeed, live_manifest, live_settings
from odist.live.status import CameraStatus, LatencyWindow
from odist.models.teachers import Teacher
from odist.redact import redact
from odist.run_config import LiveOptions
from odist.states import CameraState
from odist.storage.documents import LIVE_STATUS
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.video.live import LiveSource

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
        return "" if self.session is None else self.session.session.weights_digest()

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
            feed = self.session = self.start(area, teacher)
        except OdistError as exc:  # e.g. the camera's credentials cannot be read
            self._update(state=CameraState.FAILED, error=str(exc))
            area.fail(str(exc))
            return self.status()
        deadline = None if duration_s is None else self.clock() + duration_s
        try:
            feed.session.run(feed.frames(stop, deadline), after_each=feed.after_each)
        except OdistError as exc:
            self._update(state=CameraState.FAILED, error=str(exc))
            self._close(feed, failed=str(exc))
            return self.status()
        except BaseException as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
            self._update(state=CameraState.FAILED, error=error)
            self._close(feed, failed=error)
            raise
        self._close(feed)
        self._update(state=CameraState.STOPPED)
        return self.status()

    def start(self, area: StreamArea, teacher: Teacher) -> RealTimeFeed:
        """Prepare the camera's session (its last commit restored, a stopped stream reopened) and open its
        source; the camera is then connecting."""
        session = StreamSession(area, self.config, live=True, commit_every_s=self.options.commit_every_s,
                                clock=self.clock, on_commit=lambda: area.publish_live_status(self.status().as_dict()))
        start = session.prepare(teacher, live_manifest(self.config, self.camera, self.options), resume=True,
                                resume_fix=LIVE_RESUME_FIX)  # a camera continues only its own frames and student
        restored_from = start if area.last_commit() is not None else None
        restored_digest = session.weights_digest() if restored_from is not None else None
        source = LiveSource(self.camera.connect_url(), live_settings(self.options, self.camera), clock=self.clock)
        feed = RealTimeFeed(session, source, clock=self.clock, latency=self.latency, report=self._update)
        self._update(restored_from_frame=restored_from, restored_digest=restored_digest,
                     frames=session.distiller.ledger.frames, stride=session.distiller.ladder.stride,
                     state=CameraState.CONNECTING)
        return feed

    def _close(self, feed: RealTimeFeed, failed: str | None = None) -> None:
        """Stop the source, commit what was processed, and write the summary (or the failure)."""
        feed.close()
        if failed is not None:
            self._update(state=CameraState.FAILED, error=failed)
        session = feed.session
        try:
            session.commit()
            if failed is not None:
                session.record_failure(failed)
            elif session.distiller.ledger.frames:
                status = self.status()
                session.finish(session.summary(self.camera.shown_url, live=True, dropped_frames=status.dropped,
                                               reconnects=status.reconnects, latency_p50_ms=status.latency_p50_ms,
                                               latency_p99_ms=status.latency_p99_ms))
        except OdistError as exc:
            log.error("camera %s: could not commit on stop: %s", self.camera.id, exc)

    def _update(self, **fields: Any) -> None:
        with self._lock:
            for key, value in fields.items():
                setattr(self._status, key, value)
