"""A live camera's real-time feed of its ``StreamPipeline``: newest frame first, commits by time, status.

The feed takes the newest decoded frame (older ones are dropped and counted by the source), runs the
pipeline on it (keyframe labels always arrive in the background, one update per incoming frame) and
commits the frames so far with a checkpoint within ``FIRST_COMMIT_S`` of its first frame, then every
``commit_every_s`` seconds, so a restarted camera resumes learning from its last commit. It publishes
the camera's status after every frame.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

from odist.distill.identity import check_resume
from odist.distill.pipeline import StreamPipeline, stream_manifest
from odist.live.status import CameraState
from odist.run_config import LiveOptions
from odist.storage.layout import StreamArea
from odist.video.live import LiveSettings, LiveSource

if TYPE_CHECKING:
    from odist.live.cameras import CameraSpec
    from odist.live.student import LiveStudent
    from odist.models.teachers import Teacher

NEVER = 1 << 62  # segments are committed by time, never by frame count
FIRST_COMMIT_S = 1.0  # a camera's first processed frames commit this soon, not after a whole commit_every_s
LIVE_RESUME_FIX = ("give the camera another id in the camera list, or pass another --out "
                   "(or restore the settings its committed frames were made with)")


def live_settings(options: LiveOptions, camera: CameraSpec) -> LiveSettings:
    """How the source reads ``camera``: its own ``fps`` wins over the options'."""
    return LiveSettings(width=options.width, height=options.height, fps=camera.fps or options.fps,
                        open_timeout_s=options.open_timeout_s, read_timeout_s=options.read_timeout_s,
                        give_up_after_s=options.give_up_after_s, rtsp_transport=options.rtsp_transport)


class RealTimeFeed:
    """One run of a camera: its pipeline (restored from the last commit), source and live counters."""

    def __init__(self, owner: LiveStudent, area: StreamArea, teacher: Teacher) -> None:
        self.owner, self.area, self.config = owner, area, owner.config
        options = owner.options
        fps = owner.camera.fps or options.fps
        manifest = stream_manifest(self.config, owner.camera.shown_url, live=True,
                                   source={"width": options.width, "height": options.height, "fps": fps},
                                   options={"fps": fps, "width": options.width, "height": options.height,
                                            "commit_every_s": options.commit_every_s})
        check_resume(area, manifest, LIVE_RESUME_FIX)  # a camera continues only its own frames and student
        self.pipeline = StreamPipeline(area, self.config, teacher, overlap=True, segment_frames=NEVER,
                                       allow_gaps=True, name=f"camera {area.stream_id}")
        self.distiller = self.pipeline.distiller
        self.first_index = self.pipeline.restore(resume=True)
        area.reopen()  # a camera that was stopped (or failed) is live again
        self.restored_from = self.first_index if area.last_commit() is not None else None
        restored_digest = owner.weights_digest_of(self.distiller) if self.restored_from is not None else None
        area.record_attempt(manifest)
        self.source = LiveSource(owner.camera.connect_url(), live_settings(options, owner.camera), clock=owner.clock)
        self.pipeline.runner.open()
        self.keyframes = self.pipeline.runner.keyframes
        self.frames_this_run = 0
        self.commits = 0
        self.started = owner.clock()
        self.stop: threading.Event = threading.Event()
        self.deadline: float | None = None
        owner._update(restored_from_frame=self.restored_from, restored_digest=restored_digest,
                      frames=self.distiller.ledger.frames, stride=self.distiller.ladder.stride,
                      state=CameraState.CONNECTING)

    def feed(self, pipeline: StreamPipeline, start: int) -> None:
        """Process the newest frames until ``stop`` is set or the ``deadline`` passes, committing by time."""
        clock = self.owner.clock
        self.source.start(start)
        last_commit = clock()
        while not self.stop.is_set() and (self.deadline is None or clock() < self.deadline):
            frame = self.source.read(timeout=0.25)
            if frame is not None:
                pipeline.runner.process(frame, timed=True)
                self.frames_this_run += 1
                self.owner.latency.add(clock() - frame.timestamp)
            if clock() - last_commit >= self.commit_period():
                self.commit()
                last_commit = clock()
            self.publish_status()

    def commit_period(self) -> float:
        """``commit_every_s``; ``FIRST_COMMIT_S`` at most while processed frames wait for their first commit."""
        period = self.owner.options.commit_every_s
        return min(period, FIRST_COMMIT_S) if self.frames_this_run and not self.commits else period

    def commit(self) -> None:
        if self.pipeline.writer.flush() is not None:
            self.commits += 1
        self.area.publish_live_status(self.owner.status().as_dict())

    def publish_status(self) -> None:
        stats = self.source.stats
        elapsed = max(self.owner.clock() - self.started, 1e-9)
        processed = self.frames_this_run
        offered = processed + stats.dropped
        latency = self.owner.latency
        p50, p99 = latency.percentile(50), latency.percentile(99)
        meter = self.pipeline.runner.keyframe_meter
        self.owner._update(
            state=CameraState.RUNNING if stats.connected else CameraState.CONNECTING,
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

    def summary(self) -> dict[str, Any]:
        """The camera's summary: the pipeline's, with the live counters."""
        status = self.owner.status()
        return self.pipeline.summary(self.owner.camera.shown_url, live=True, dropped_frames=status.dropped,
                                     reconnects=status.reconnects, latency_p50_ms=status.latency_p50_ms,
                                     latency_p99_ms=status.latency_p99_ms)

    def close(self) -> None:
        """Stop the source and the background labelling; publish the last status."""
        self.source.stop()
        self.pipeline.runner.close()
        self.publish_status()


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)

