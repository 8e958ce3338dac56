"""The Ray actor of one live camera: runs its ``LiveStudent`` from construction, so a restart resumes.

Ray restarts a dead camera actor (``max_restarts=-1``) with the same arguments; the new instance
restores the camera's last commit and goes on. ``stop`` commits and ends the camera cleanly.
"""

from __future__ import annotations

import logging
import threading

import ray

from odist.config import OdistConfig
from odist.fleet.runtime import LocalTeacherFactory, TeacherFactory
from odist.live.cameras import CameraSpec
from odist.live.metrics import CameraMetrics
from odist.live.status import CameraStatus
from odist.live.student import LiveOptions, LiveStudent
from odist.redact import install

log = logging.getLogger(__name__)


class LiveCameraWorker:
    """Runs one camera in a background thread; ``status`` and ``stop`` answer while it runs."""

    def __init__(self, camera: CameraSpec, out: str, config: OdistConfig, options: LiveOptions,
                 teacher_factory: TeacherFactory | None = None) -> None:
        install()  # this process's log records mask every secret
        factory = teacher_factory or LocalTeacherFactory()
        self.student = LiveStudent(camera, out, config, lambda: factory(self.student.config), options)
        self._stop = threading.Event()
        self._final: CameraStatus | None = None
        self._metrics = CameraMetrics(camera.id) if ray.is_initialized() else None
        self._thread = threading.Thread(target=self._run, name=f"live {camera.id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._final = self.student.run(self._stop)
        except BaseException:
            log.exception("camera %s stopped on an unexpected error", self.student.camera.id)

    def status(self) -> CameraStatus:
        """The camera now (and pushes it to Ray's metrics)."""
        status = self._final or self.student.status()
        if self._metrics is not None:
            self._metrics.record(status)
        return status

    def stop(self, timeout: float = 60.0) -> CameraStatus:
        """Stop the camera, commit what it processed; returns its last status."""
        self._stop.set()
        self._thread.join(timeout)
        return self.status()

    def weights_digest(self) -> str:
        """A digest of the student's current weights (to check a restore)."""
        return self.student.weights_digest()

    def pid(self) -> int:
        import os

        return os.getpid()


LiveCamera = ray.remote(max_restarts=-1, max_task_retries=0, max_concurrency=4)(LiveCameraWorker)
"""The Ray actor class; resources via ``.options(**worker_options(...))``."""
