"""The fleet progress line: finished streams as the bar, the rest as fields, extras never fatal."""

from __future__ import annotations

from odist.fleet.progress import FleetCounts, FleetProgress


def shown(progress: FleetProgress) -> str:
    assert progress.bar is not None
    progress.bar.refresh()
    return str(progress.bar)


def test_the_line_shows_streams_frames_and_the_teacher_queue(capsys):
    progress = FleetProgress(total=5, extras=lambda: {"replicas": 2})
    progress.update(FleetCounts(done=2, failed=1, running=2, frames=300, teacher_queue=7))
    line = shown(progress)
    progress.close()
    assert "3/5" in line and "running=2" in line and "failed=1" in line and "frames=300" in line
    assert "teacher_queue=7" in line and "replicas=2" in line


def test_no_pool_no_queue_field_and_a_failing_probe_does_not_stop_the_job(capsys):
    def broken() -> dict[str, int]:
        raise ConnectionError("serve is gone")

    progress = FleetProgress(total=1, extras=broken)
    progress.update(FleetCounts(running=1, frames=10))
    line = shown(progress)
    progress.close()
    assert "teacher_queue" not in line and "extras=ConnectionError" in line


def test_a_disabled_display_does_nothing():
    progress = FleetProgress(total=3, enabled=False)
    progress.update(FleetCounts(done=3))
    progress.close()
    assert progress.bar is None
