"""One live camera's student: real-time inference, asynchronous keyframes, periodic commits, resume.

The loop takes the newest decoded frame (older ones are dropped and counted by the source), runs the
student on it and, when the stride ladder asks for a keyframe, sends that frame to the teacher without
waiting. When the labels arrive (some frames later) the student scores the prediction it made for that
frame before seeing them (the running mIoU vs teacher), then takes its update steps one per incoming
frame (so a keyframe never stalls inference for more than one step) and finally moves the ladder.
Every ``commit_every_s`` seconds the frames so far are committed with a checkpoint, so a restarted
camera resumes learning from its last commit. No Ray in here: the fleet layer places and restarts it.

Records are those of archive streams, with live meanings: ``timestamp`` is the wall-clock capture time
(unix seconds); a ``keyframe`` row is the frame at which a keyframe's labels were learned (its
``updates``, ``keyframe_accuracy`` and ``teacher_seconds``), and its ``miou`` / ``miou_foreground`` are
the student's score on that keyframe before learning from it (NaN on other rows).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from odist.config import OdistConfig
from odist.distill.distiller import FrameResult, OnlineDistiller
from odist.distill.overlap import Learned, OverlappedKeyframes
from odist.distill.runner import StreamRunner, frame_record
from odist.distill.stream import TeacherSource, checkpoint_state, config_for_stream, restore_stream, run_manifest
from odist.errors import OdistError
from odist.live.cameras import CameraSpec
from odist.live.status import CameraStatus, LatencyWindow
from odist.models.teachers import Teacher
from odist.redact import redact
from odist.storage.layout import StreamArea, dumps
from odist.storage.objectstore import open_store
from odist.storage.segments import SegmentWriter
from odist.video.frame import Frame
from odist.video.live import LiveSettings, LiveSource

log = logging.getLogger(__name__)
LIVE_STATUS = "live.json"
NEVER = 1 << 62  # segments are committed by time, never by frame count


@dataclass(frozen=True)
class LiveOptions:
    """How every camera is read and committed (a camera's own ``fps`` wins over ``fps`` here)."""

    fps: float | None = 10.0
    width: int | None = None
    height: int | None = None
    commit_every_s: float = 30.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    give_up_after_s: float | None = None

    def settings(self, camera: CameraSpec) -> LiveSettings:
        return LiveSettings(width=self.width, height=self.height, fps=camera.fps or self.fps,
                            open_timeout_s=self.open_timeout_s, read_timeout_s=self.read_timeout_s,
                            give_up_after_s=self.give_up_after_s)


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
        self.session: _Session | None = None

    def weights_digest(self) -> str:
        """SHA-256 of the student's current weights ("" before the run starts)."""
        return "" if self.session is None else state_digest(self.session.distiller.student.state_dict())

    def status(self) -> CameraStatus:
        with self._lock:
            return replace(self._status)

    def run(self, stop: threading.Event, duration_s: float | None = None) -> CameraStatus:
        """Process the camera until ``stop`` is set or ``duration_s`` has passed; commit and return the status.

        A source that gives up (undecodable stream, unreachable for ``give_up_after_s``) ends the run as
        ``failed`` with its error, after committing what was processed.
        """
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        area = StreamArea(open_store(self.out), self.camera.id)
        teacher = self.teacher_source if isinstance(self.teacher_source, Teacher) else self.teacher_source()
        try:
            session = self.session = _Session(self, area, teacher)
        except OdistError as exc:  # e.g. the camera's credentials cannot be read
            self._update(state="failed", error=str(exc))
            area.fail(str(exc))
            return self.status()
        try:
            session.loop(stop, None if duration_s is None else self.clock() + duration_s)
        except OdistError as exc:
            self._update(state="failed", error=str(exc))
            session.close(failed=str(exc))
            return self.status()
        except BaseException as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
            self._update(state="failed", error=error)
            session.close(failed=error)
            raise
        session.close()
        self._update(state="stopped")
        return self.status()

    def _update(self, **fields: Any) -> None:
        with self._lock:
            for key, value in fields.items():
                setattr(self._status, key, value)


class _Session:
    """The state of one run of a camera: distiller, writer, source and the keyframe in flight."""

    def __init__(self, owner: LiveStudent, area: StreamArea, teacher: Teacher) -> None:
        self.owner, self.area, self.config = owner, area, owner.config
        self.distiller = OnlineDistiller(self.config, teacher)
        self.runner = StreamRunner(self.distiller)
        self.first_index = restore_stream(area, self.distiller, self.runner, self.config, resume=True, init=None)
        area.store.delete(area.key("summary.json"))  # a camera that was stopped (or failed) is live again
        area.store.delete(area.key("failed.json"))
        self.restored_from = self.first_index if area.last_commit() is not None else None
        restored_digest = state_digest(self.distiller.student.state_dict()) if self.restored_from is not None else None
        self.writer = SegmentWriter(area, self._checkpoint, segment_frames=NEVER, allow_gaps=True)
        self.runner.sink = self.writer
        area.store.put(area.key("stream.json"), dumps(self._manifest()))
        self.source = LiveSource(owner.camera.connect_url(), owner.options.settings(owner.camera), clock=owner.clock)
        self.keyframes = OverlappedKeyframes(self.distiller, self.runner.keyframe_meter, f"camera {area.stream_id}")
        self.frames_this_run = 0
        self.commits = 0
        self.started = owner.clock()
        owner._update(restored_from_frame=self.restored_from, restored_digest=restored_digest,
                      frames=self.distiller.ledger.frames, stride=self.distiller.ladder.stride, state="connecting")

    # -- the loop ------------------------------------------------------------------------------------

    def loop(self, stop: threading.Event, deadline: float | None) -> None:
        clock = self.owner.clock
        self.source.start(self.first_index)
        last_commit = clock()
        while not stop.is_set() and (deadline is None or clock() < deadline):
            frame = self.source.read(timeout=0.25)
            if frame is not None:
                self._process(frame)
            if clock() - last_commit >= self.owner.options.commit_every_s:
                self._commit()
                last_commit = clock()
            self._publish_status()

    def _process(self, frame: Frame) -> None:
        started = time.perf_counter()
        result, learned = self.keyframes.step(frame)
        self.writer.add(self._record(frame, result, learned), result.prediction)
        self.frames_this_run += 1
        self.owner.latency.add(self.owner.clock() - frame.timestamp)
        self.runner.wall_seconds += time.perf_counter() - started

    def _record(self, frame: Frame, result: FrameResult, learned: Learned | None) -> dict[str, Any]:
        return frame_record(frame, result, learned, self.distiller.ladder.stride)

    # -- commits and status --------------------------------------------------------------------------

    def _commit(self) -> None:
        if self.writer.flush() is not None:
            self.commits += 1
        self.area.store.put(self.area.key(LIVE_STATUS), dumps(self.owner.status().as_dict()))

    def _checkpoint(self, next_frame: int) -> bytes:
        return checkpoint_state(self.distiller, self.runner, self.config, next_frame)

    def _publish_status(self) -> None:
        stats = self.source.stats
        elapsed = max(self.owner.clock() - self.started, 1e-9)
        processed = self.frames_this_run
        offered = processed + stats.dropped
        latency = self.owner.latency
        p50, p99 = latency.percentile(50), latency.percentile(99)
        meter = self.runner.keyframe_meter
        self.owner._update(
            state="running" if stats.connected else "connecting",
            frames=self.distiller.ledger.frames, frames_this_run=processed,
            fps_in=(stats.decoded - stats.sampled_out) / elapsed, fps_out=processed / elapsed,
            dropped=stats.dropped, drop_fraction=stats.dropped / offered if offered else 0.0,
            latency_p50_ms=None if p50 is None else 1000 * p50, latency_p99_ms=None if p99 is None else 1000 * p99,
            keyframes=self.distiller.ledger.keyframes,
            keyframe_rate=self.keyframes.keyframes / processed if processed else 0.0,
            stride=self.distiller.ladder.stride,
            miou_vs_teacher=None if not meter.matrix.any() else _finite(meter.miou()),
            reconnects=stats.reconnects, teacher_errors=self.keyframes.teacher_errors, commits=self.commits,
            error=stats.last_error if not stats.connected else None)

    def close(self, failed: str | None = None) -> None:
        """Stop the source, commit what was processed, and write the summary (or the failure)."""
        self.source.stop()
        self.keyframes.close()
        self._publish_status()
        if failed is not None:
            self.owner._update(state="failed", error=failed)
        try:
            self._commit()
            if failed is not None:
                self.area.fail(failed)
            elif self.distiller.ledger.frames:
                self.area.finish(self._summary())
        except OdistError as exc:
            log.error("camera %s: could not commit on stop: %s", self.owner.camera.id, exc)

    def _summary(self) -> dict[str, Any]:
        summary = self.runner.summary(self.config.classes)
        status = self.owner.status()
        summary.update(stream_id=self.area.stream_id, input=self.owner.camera.shown_url,
                       teacher=self.config.teacher.name,
                       live=True, dropped_frames=status.dropped, reconnects=status.reconnects,
                       latency_p50_ms=status.latency_p50_ms, latency_p99_ms=status.latency_p99_ms,
                       mask_compression=self.writer.raw_mask_bytes / max(self.writer.mask_bytes, 1))
        last = self.area.last_commit()
        if last is not None:
            summary["checkpoint"] = self.area.store.url(last.checkpoint)
        return summary

    def _manifest(self) -> dict[str, Any]:
        options = self.owner.options
        return {**run_manifest(), "input": self.owner.camera.shown_url, "live": True,
                "options": {"fps": self.owner.camera.fps or options.fps, "width": options.width,
                            "height": options.height, "commit_every_s": options.commit_every_s},
                "config": self.config.to_dict()}


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 over a state dict's tensors, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)

