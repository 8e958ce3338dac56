"""A live camera's frames and counters: the newest decoded frame each time, and the status it shows.

``RealTimeFeed.frames`` gives the newest decoded frame (older ones are dropped and counted by the source),
or None when none arrived in time, until stopped; ``StreamSession.run`` processes them (keyframe labels
always arrive in the background, one update per incoming frame) and commits by time, so a restarted
camera resumes learning from its last commit. After every item the feed works out the camera's status
(``after_each``) and hands it to ``report``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from odist.distill.options import stream_manifest
from odist.distill.session import NEVER, StreamSession
from odist.live.status import CameraState, LatencyWindow
from odist.run_config import LiveOptions
from odist.video.frame import Frame
from odist.video.live import LiveSettings, LiveSource

if TYPE_CHECKING:
    from odist.config import OdistConfig
    from odist.live.cameras import CameraSpec

__all__ = ["LIVE_RESUME_FIX", "NEVER", "RealTimeFeed", "live_manifest", "live_settings"]
LIVE_RESUME_FIX = ("give the camera another id in the camera list, or pass another --out "
                   "(or restore the settings its committed frames were made with)")


def live_settings(options: LiveOptions, camera: CameraSpec) -> LiveSettings:
    """How the source reads ``camera``: its own ``fps`` wins over the options'."""
    return LiveSettings(width=options.width, height=options.height, fps=camera.fps or options.fps,
                        open_timeout_s=options.open_timeout_s, read_timeout_s=options.read_timeout_s,
                        give_up_after_s=options.give_up_after_s, rtsp_transport=options.rtsp_transport)


def live_manifest(config: OdistConfig, camera: CameraSpec, options: LiveOptions) -> dict[str, Any]:
    """The camera's ``stream.json``: what a restart must match to continue its committed frames."""
    fps = camera.fps or options.fps
    return stream_manifest(config, camera.shown_url, live=True,
                           source={"width": options.width, "height": options.height, "fps": fps},
                           options={"fps": fps, "width": options.width, "height": options.height,
                                    "commit_every_s": options.commit_every_s})


class RealTimeFeed:
    """One run of a camera over its prepared ``session``: the source's newest frames and the live counters.

    ``report(**fields)`` receives the camera's status fields after every frame or wait; ``latency`` collects
    capture-to-result latencies."""

    def __init__(self, session: StreamSession, source: LiveSource, *, clock: Callable[[], float],
                 latency: LatencyWindow, report: Callable[..., None]) -> None:
        self.session, self.source, self.clock = session, source, clock
        self.latency, self.report = latency, report
        self.distiller = session.distiller
        self.keyframes: Any = None  # the session's background labelling (``OverlappedKeyframes``) once it runs
        self.started = clock()

    @property
    def frames_this_run(self) -> int:
        return self.session.frames_this_run

    def frames(self, stop: threading.Event, deadline: float | None) -> Iterator[Frame | None]:
        """The newest frames from the session's start on, None after a wait without one, until ``stop`` is set
        or ``deadline`` passes."""
        self.keyframes = self.session.runner.keyframes  # its counters outlive the run
        self.source.start(self.session.start)
        while not stop.is_set() and (deadline is None or self.clock() < deadline):
            yield self.source.read(timeout=0.25)

    def after_each(self, frame: Frame | None) -> None:
        """Count ``frame``'s latency (when one came) and report the camera's status."""
        if frame is not None:
            self.latency.add(self.clock() - frame.timestamp)
        self.publish_status()

    def publish_status(self) -> None:
        stats = self.source.stats
        elapsed = max(self.clock() - self.started, 1e-9)
        processed = self.frames_this_run
        offered = processed + stats.dropped
        p50, p99 = self.latency.percentile(50), self.latency.percentile(99)
        runner, ledger, keyframes = self.session.runner, self.distiller.ledger, self.keyframes
        self.report(
            state=CameraState.RUNNING if stats.connected else CameraState.CONNECTING,
            frames=ledger.frames, frames_this_run=processed,
            fps_in=(stats.decoded - stats.sampled_out) / elapsed, fps_out=processed / elapsed,
            dropped=stats.dropped, drop_fraction=stats.dropped / offered if offered else 0.0,
            latency_p50_ms=None if p50 is None else 1000 * p50, latency_p99_ms=None if p99 is None else 1000 * p99,
            keyframes=ledger.keyframes,
            keyframe_rate=keyframes.keyframes / processed if keyframes is not None and processed else 0.0,
            stride=self.distiller.ladder.stride,
            miou_vs_teacher=None if not runner.keyframe_meter.matrix.any() else _finite(runner.keyframe_meter.miou()),
            reconnects=stats.reconnects,
            teacher_errors=keyframes.teacher_errors if keyframes is not None else 0,
            commits=self.session.commits, error=stats.last_error if not stats.connected else None)

    def close(self) -> None:
        """Stop the source and the background labelling; publish the last status."""
        self.source.stop()
        self.session.runner.close()
        self.publish_status()


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
