"""Live metrics: every numeric status field goes to its Ray gauge, tagged with the camera."""

from __future__ import annotations

from typing import ClassVar

import pytest

from odist.live import metrics
from odist.live.status import CameraStatus


class FakeGauge:
    made: ClassVar[dict[str, FakeGauge]] = {}

    def __init__(self, name: str, description: str, tag_keys: tuple[str, ...]) -> None:
        self.name, self.tag_keys, self.values = name, tag_keys, []
        FakeGauge.made[name] = self

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.values.append((value, tags))


def test_a_status_sets_each_gauge_with_the_camera_tag(monkeypatch):
    ray_metrics = pytest.importorskip("ray.util.metrics")
    monkeypatch.setattr(ray_metrics, "Gauge", FakeGauge)
    camera_metrics = metrics.CameraMetrics("porch")
    status = CameraStatus("porch", frames=120, fps_in=10.0, fps_out=9.5, dropped=6, drop_fraction=0.05,
                          latency_p50_ms=40.0, latency_p99_ms=None, keyframe_rate=0.1, miou_vs_teacher=0.8,
                          reconnects=2)
    camera_metrics.record(status)
    assert set(FakeGauge.made) == set(metrics.GAUGES)
    for name, (field, _) in metrics.GAUGES.items():
        gauge = FakeGauge.made[name]
        assert gauge.tag_keys == ("camera",)
        expected = getattr(status, field)
        assert gauge.values == ([] if expected is None else [(float(expected), {"camera": "porch"})]), name
