"""Live camera metrics through Ray's metrics API, so Ray's Prometheus endpoint serves them."""

from __future__ import annotations

from typing import Any

from odist.live.status import CameraStatus

# metric name -> (CameraStatus field, description)
GAUGES = {
    "odist_live_fps_in": ("fps_in", "frames decoded per second"),
    "odist_live_fps_out": ("fps_out", "frames processed per second"),
    "odist_live_dropped_frames": ("dropped", "frames dropped because the student fell behind (this run)"),
    "odist_live_drop_fraction": ("drop_fraction", "dropped / (processed + dropped)"),
    "odist_live_latency_p50_ms": ("latency_p50_ms", "capture-to-result latency, median"),
    "odist_live_latency_p99_ms": ("latency_p99_ms", "capture-to-result latency, 99th percentile"),
    "odist_live_keyframe_rate": ("keyframe_rate", "keyframes per processed frame"),
    "odist_live_miou_vs_teacher": ("miou_vs_teacher", "running mIoU of the student vs the teacher on keyframes"),
    "odist_live_reconnects": ("reconnects", "reconnects to the camera"),
    "odist_live_frames": ("frames", "frames processed since the camera's first start"),
}


class CameraMetrics:
    """Ray gauges tagged with the camera id; ``record`` pushes one status."""

    def __init__(self, camera: str) -> None:
        from ray.util.metrics import Gauge

        self.tags = {"camera": camera}
        self.gauges: dict[str, Any] = {
            name: Gauge(name, description=description, tag_keys=("camera",))
            for name, (_, description) in GAUGES.items()}

    def record(self, status: CameraStatus) -> None:
        for name, (field, _) in GAUGES.items():
            value = getattr(status, field)
            if value is not None:
                self.gauges[name].set(float(value), tags=self.tags)
