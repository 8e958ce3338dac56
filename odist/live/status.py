"""What a live camera reports: counters, rates and latency percentiles, as one plain snapshot."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from odist.states import CameraState


class LatencyWindow:
    """Capture-to-result latencies of the last ``size`` frames."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(np.fromiter(self._values, float), q)) if self._values else None


@dataclass
class CameraStatus:
    """One camera at one moment (``odist live``'s status table, metrics and ``live.json``)."""

    camera: str
    state: CameraState = CameraState.STARTING
    frames: int = 0  # frames processed since the camera's first start (restarts included)
    frames_this_run: int = 0
    fps_in: float = 0.0  # frames decoded per second (this run)
    fps_out: float = 0.0  # frames processed per second (this run)
    dropped: int = 0  # frames the student was too slow for (this run)
    drop_fraction: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    keyframes: int = 0
    keyframe_rate: float = 0.0  # keyframes per processed frame (this run)
    stride: int = 0
    miou_vs_teacher: float | None = None  # the student's keyframe predictions, made before their labels came
    reconnects: int = 0
    teacher_errors: int = 0
    restored_from_frame: int | None = None  # the checkpoint this run resumed from
    restored_digest: str | None = None  # weight_digest of the weights restored from it
    commits: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
