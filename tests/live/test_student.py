"""A live student on a real UDP camera: keeps up or drops and counts, learns from late labels, commits, resumes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from odist.config import load_config
from odist.errors import TeacherError
from odist.live.cameras import CameraSpec
from odist.live.status import CameraStatus
from odist.live.student import LiveOptions, LiveStudent
from odist.storage.checkpoint import parse_checkpoint, weight_digest
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table

CONFIG = load_config(overrides=["student.width=0.25", "threads=1"], environ={})
OPTIONS = LiveOptions(fps=None, commit_every_s=1.0, open_timeout_s=5, read_timeout_s=5)


def run_for(student: LiveStudent, seconds: float):
    return student.run(threading.Event(), duration_s=seconds)


def run_until(student: LiveStudent, done: Callable[[CameraStatus], bool], what: str, deadline_s: float = 180.0):
    """Run ``student`` until its status satisfies ``done`` (a loaded machine only makes this take longer)."""
    stop, outcome = threading.Event(), {}
    runner = threading.Thread(target=lambda: outcome.update(status=student.run(stop)), daemon=True)
    runner.start()
    deadline = time.monotonic() + deadline_s
    while runner.is_alive() and not done(student.status()):
        if time.monotonic() > deadline:
            stop.set()
            runner.join(60)
            pytest.fail(f"gave up after {deadline_s:.0f} s waiting for {what}")
        time.sleep(0.2)
    stop.set()
    runner.join(60)
    return outcome["status"]


@pytest.fixture
def udp_camera(camera):
    return camera("udp")


def test_a_live_student_learns_from_late_labels_commits_and_resumes_from_its_checkpoint(
        udp_camera, bright_teacher_factory, tmp_path):
    spec = CameraSpec("door", udp_camera.url)
    teacher = bright_teacher_factory(CONFIG)
    first = run_until(LiveStudent(spec, str(tmp_path), CONFIG, teacher, OPTIONS),
                      lambda s: s.keyframes >= 1 and s.commits >= 2, "a learned keyframe and two commits")
    assert first.state == "stopped" and first.frames_this_run > 0 and first.keyframes >= 1
    assert first.commits >= 2 and first.restored_from_frame is None
    assert first.miou_vs_teacher is not None and first.latency_p50_ms is not None

    area = StreamArea(open_store(str(tmp_path)), "door")
    records = read_stream_table(area).to_pydict()
    indices = records["frame_index"]
    assert len(indices) == first.frames_this_run and indices == sorted(set(indices))  # once each, gaps = drops
    keyrows = [i for i, k in enumerate(records["keyframe"]) if k]
    assert len(keyrows) == first.keyframes and all(records["updates"][i] >= 1 for i in keyrows)
    assert all(np.isfinite(records["miou"][i]) for i in keyrows)  # scored before learning from the labels
    summary = area.summary()
    assert summary["live"] and summary["dropped_frames"] == first.dropped and summary["keyframes"] == first.keyframes

    last = area.last_commit()
    payload = parse_checkpoint(area.store.get(last.checkpoint), last.checkpoint, CONFIG.to_dict())
    second_student = LiveStudent(spec, str(tmp_path), CONFIG, teacher, OPTIONS)
    second = run_until(second_student, lambda s: s.frames_this_run > 0, "frames after the restore")
    assert second.restored_from_frame == last.next_frame_index
    assert second.restored_digest == weight_digest(payload["state"]["distiller"]["student"])
    assert second.frames == first.frames + second.frames_this_run  # the ledger went on from the checkpoint
    later = read_stream_table(StreamArea(open_store(str(tmp_path)), "door")).to_pydict()["frame_index"]
    assert later[:len(indices)] == indices and min(later[len(indices):]) >= last.next_frame_index


def test_frames_are_processed_or_dropped_and_every_one_is_accounted_for(udp_camera, bright_teacher_factory, tmp_path):
    student = LiveStudent(CameraSpec("count", udp_camera.url), str(tmp_path), CONFIG,
                          bright_teacher_factory(CONFIG), OPTIONS)
    status = run_until(student, lambda s: s.frames_this_run >= 10, "ten frames")
    stats = student.session.source.stats
    assert status.frames_this_run == stats.delivered and status.dropped == stats.dropped
    assert stats.decoded - stats.sampled_out - stats.delivered - stats.dropped in (0, 1)
    assert 0.0 <= status.drop_fraction < 1.0


class FailingTeacher:
    """A teacher that always fails: the camera must keep running and count the failures."""

    name = "failing"
    class_names = CONFIG.classes

    def label(self, frames):
        raise TeacherError("teacher pool 'x' unreachable", "start it")

    def gflops_per_frame(self, height: int, width: int) -> float:
        return 520.0


def test_a_failing_teacher_never_stops_the_camera(udp_camera, tmp_path):
    from odist.models.teachers.base import Teacher

    class Failing(FailingTeacher, Teacher):
        pass

    status = run_until(LiveStudent(CameraSpec("lonely", udp_camera.url), str(tmp_path), CONFIG,
                                   Failing(CONFIG.classes), OPTIONS),
                       lambda s: s.frames_this_run > 0 and s.teacher_errors >= 1, "frames and a teacher error")
    assert status.state == "stopped" and status.frames_this_run > 0
    assert status.teacher_errors >= 1 and status.keyframes == 0


def test_an_unreachable_camera_fails_alone_with_its_error(tmp_path, bright_teacher_factory):
    options = LiveOptions(open_timeout_s=1, read_timeout_s=1, give_up_after_s=1.0)
    status = run_for(LiveStudent(CameraSpec("gone", "tcp://127.0.0.1:9"), str(tmp_path), CONFIG,
                                 bright_teacher_factory(CONFIG), options), 30.0)
    assert status.state == "failed" and "gave no frame" in status.error
    assert StreamArea(open_store(str(tmp_path)), "gone").status()[0] == "failed"


def test_a_camera_another_writer_holds_fails_alone_until_its_lease_is_free(tmp_path):
    from odist.storage.lease import LeaseSettings

    # The student's short lease only shortens how long it waits for a crashed predecessor's lease (1.75 s); the
    # other writer keeps the default one (30 s), so that a loaded machine delaying its renewals cannot free it.
    config = load_config(overrides=["student.width=0.25", "threads=1", "storage.lease_ttl_s=1.5",
                                    "storage.lease_heartbeat_s=0.25"], environ={})
    out = str(tmp_path / "run")
    other = StreamArea(open_store(out), "cam").writer_lease(LeaseSettings()).acquire()
    try:
        student = LiveStudent(CameraSpec("cam", "udp://127.0.0.1:9"), out, config,
                              lambda: pytest.fail("no teacher is built for a stream this camera cannot write"),
                              OPTIONS)
        status = run_for(student, 5)  # it waits out a crashed predecessor's lease, not a live one
    finally:
        other.release()
    assert status.state == "failed" and "is being written by another odist" in status.error
    assert StreamArea(open_store(out), "cam").failure() is None
