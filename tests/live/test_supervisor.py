"""Camera actors on a local Ray: CAMERAS.yaml edits picked up live, a killed actor resumes from its checkpoint,
a bad entry or an unreachable camera fails alone, and a stop commits every camera."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time

import pytest
import ray
from leases import expire_lease

from odist.config import load_config
from odist.errors import ConfigError
from odist.live.student import LiveOptions
from odist.live.supervisor import CameraFleet, LiveJob, run_live, status_table
from odist.storage.checkpoint import parse_checkpoint
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store

# The cameras keep the default lease (30 s): a loaded machine delaying a short lease's renewals could stop a live
# camera. A killed camera actor's lease lives on until it expires; its restart waits for that, and the test
# expires it once the old process is gone.
CONFIG = load_config(overrides=["student.width=0.25", "threads=1"], environ={})
OPTIONS = LiveOptions(fps=None, commit_every_s=1.0, open_timeout_s=5, read_timeout_s=5)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module; the test teacher travels to the actors by value."""
    ray.cloudpickle.register_pickle_by_value(sys.modules["conftest"])
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, namespace="odist-live-tests")
    yield
    if started:
        ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules["conftest"])


def write_cameras(path, cameras: dict[str, str]) -> None:
    path.write_text("".join(f"- id: {cid}\n  url: {url}\n" for cid, url in cameras.items()))


def status_of(fleet: CameraFleet, camera_id: str):
    return {s.camera: s for s in fleet.statuses()}[camera_id]


def test_edits_to_the_camera_list_start_and_stop_cameras_and_the_others_go_on(
        local_ray, camera, bright_teacher_factory, wait_for, tmp_path):
    first, second = camera("udp"), camera("tcp", scenario="nonstationary")
    path = tmp_path / "cameras.yaml"
    write_cameras(path, {"first": first.url})
    out = str(tmp_path / "run")
    fleet = CameraFleet(path, LiveJob(out, CONFIG, OPTIONS, student_cpus=0.5,
                                      teacher_factory=bright_teacher_factory))
    try:
        fleet.sync()
        wait_for(lambda: status_of(fleet, "first").frames_this_run > 5, "the first camera's frames")
        first_actor = fleet.actors["first"][1]
        path.write_text(path.read_text() + f"- id: second\n  url: {second.url}\n- id: broken\n  url: nope\n")
        _touch_later(path)
        fleet.sync()
        assert sorted(fleet.actors) == ["first", "second"] and fleet.actors["first"][1] is first_actor
        assert len(fleet.problems) == 1 and "broken" not in fleet.actors and "not a live URL" in fleet.problems[0]
        wait_for(lambda: status_of(fleet, "second").frames_this_run > 5, "the added camera's frames")
        write_cameras(path, {"second": second.url})
        _touch_later(path)
        fleet.sync()
        assert list(fleet.actors) == ["second"] and fleet.last["first"].state == "stopped"
        assert StreamArea(open_store(out), "first").status()[0] == "done"  # committed on its way out
        print(status_table(fleet.statuses()))
    finally:
        fleet.stop_all()
    assert fleet.last["second"].state == "stopped"


def test_a_killed_camera_actor_resumes_from_its_last_checkpoint(
        local_ray, camera, bright_teacher_factory, wait_for, tmp_path):
    publisher = camera("udp")
    path = tmp_path / "cameras.yaml"
    write_cameras(path, {"porch": publisher.url})
    out = str(tmp_path / "run")
    fleet = CameraFleet(path, LiveJob(out, CONFIG, OPTIONS, student_cpus=0.5,
                                      teacher_factory=bright_teacher_factory))
    area = StreamArea(open_store(out), "porch")
    try:
        fleet.sync()
        wait_for(lambda: StreamArea(open_store(out), "porch").last_commit() is not None
                 and status_of(fleet, "porch").keyframes >= 2, "a commit after some learning")
        actor = fleet.actors["porch"][1]
        pid = ray.get(actor.pid.remote())
        ray.kill(actor, no_restart=False)  # as a crash: Ray restarts it
        wait_for(lambda: _restarted(actor, pid), "the camera actor to come back")
        expire_lease(area)  # the killed one's, as waiting out its ttl would: the restart is waiting for it
        wait_for(lambda: ray.get(actor.status.remote()).restored_from_frame is not None, "the restore")
        status = ray.get(actor.status.remote())
        commits = StreamArea(open_store(out), "porch").commits()
        restored = next(c for c in commits if c.next_frame_index == status.restored_from_frame)
        payload = parse_checkpoint(area.store.get(restored.checkpoint) if area.store.exists(restored.checkpoint)
                                   else _checkpoint_bytes_from_later(area, restored), restored.checkpoint,
                                   CONFIG.to_dict())
        from odist.storage.checkpoint import weight_digest

        assert status.restored_digest == weight_digest(payload["state"]["distiller"]["student"])
        wait_for(lambda: ray.get(actor.status.remote()).frames_this_run > 3, "frames after the restart")
    finally:
        fleet.stop_all()


def test_run_live_stops_on_request_commits_every_camera_and_fails_an_unreachable_one_alone(
        local_ray, camera, bright_teacher_factory, tmp_path):
    publisher = camera("udp")
    path = tmp_path / "cameras.yaml"
    write_cameras(path, {"alive": publisher.url, "gone": "tcp://127.0.0.1:9"})
    out = str(tmp_path / "run")
    options = LiveOptions(fps=None, commit_every_s=1.0, open_timeout_s=1, read_timeout_s=2, give_up_after_s=2.0)
    job = LiveJob(out, CONFIG, options, student_cpus=0.5, teacher_factory=bright_teacher_factory)
    stop = threading.Event()
    seen: list[list] = []

    def watch(statuses: list) -> None:  # stop once the good camera works and the bad one has given up
        seen.append(statuses)
        by_camera = {s.camera: s for s in statuses}
        if by_camera["alive"].frames_this_run > 3 and by_camera["gone"].state == "failed":
            stop.set()

    final = run_live(path, job, stop=stop, on_status=watch, status_every_s=1.0, duration_s=120)
    by_camera = {s.camera: s for s in final}
    assert by_camera["alive"].state == "stopped" and by_camera["alive"].frames_this_run > 0
    assert by_camera["gone"].state == "failed" and "gave no frame" in by_camera["gone"].error
    assert StreamArea(open_store(out), "alive").status()[0] == "done"
    assert StreamArea(open_store(out), "gone").status()[0] == "failed"
    assert seen and open_store(out).exists("live_status.json")


def test_the_oracle_teacher_is_refused_for_live_cameras(tmp_path):
    path = tmp_path / "cameras.yaml"
    write_cameras(path, {"a": "udp://127.0.0.1:5000"})
    oracle = dataclasses.replace(CONFIG, teacher=dataclasses.replace(CONFIG.teacher, name="oracle"))
    with pytest.raises(ConfigError, match="needs synthetic ground truth"):
        run_live(path, LiveJob(str(tmp_path / "run"), oracle))


def _restarted(actor, old_pid: int) -> bool:
    try:
        return ray.get(actor.pid.remote(), timeout=5) != old_pid
    except ray.exceptions.RayError:
        return False


def _touch_later(path) -> None:
    """Make sure the edit changes the file's mtime even on coarse-grained file systems."""
    import os

    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 1))


def _checkpoint_bytes_from_later(area: StreamArea, commit) -> bytes:
    pytest.fail(f"the restored checkpoint {commit.checkpoint} is gone already")


@ray.remote(max_concurrency=2)
class SlowToAnswer:
    """A camera actor that is alive but slow to answer its status call."""

    def ready(self) -> bool:
        return True

    def status(self):
        import time

        from odist.live.status import CameraStatus

        time.sleep(10)
        return CameraStatus("slow", state="running")


def test_a_camera_slow_to_answer_is_not_shown_restarting_but_a_dead_one_is(local_ray, tmp_path):
    from odist.live.cameras import CameraSpec
    from odist.live.status import CameraStatus

    fleet = CameraFleet(tmp_path / "cameras.yaml", LiveJob(str(tmp_path / "run"), CONFIG))
    actor = SlowToAnswer.remote()
    assert ray.get(actor.ready.remote(), timeout=120)
    fleet.actors["slow"] = (CameraSpec("slow", "udp://127.0.0.1:9"), actor)
    fleet.last["slow"] = CameraStatus("slow", state="running", frames=7)
    (status,) = fleet.statuses(timeout=0.5)
    assert status.state == "running" and status.frames == 7 and "not answered" in status.error
    ray.kill(actor, no_restart=True)
    (status,) = fleet.statuses(timeout=30)
    assert status.state == "restarting" and status.frames == 7


def test_a_camera_the_cluster_has_no_room_for_shows_pending_with_the_fix(local_ray, tmp_path, caplog):
    from odist.live.cameras import CameraSpec

    fleet = CameraFleet(tmp_path / "cameras.yaml", LiveJob(str(tmp_path / "run"), CONFIG, student_cpus=64))
    actor = SlowToAnswer.options(num_cpus=64).remote()  # more CPUs than the local Ray has: never placed
    fleet.actors["big"] = (CameraSpec("big", "udp://127.0.0.1:9"), actor)
    try:
        (status,) = fleet.statuses(timeout=0.5)
        assert status.state == "pending"
        assert status.error == "waits for 64 CPU; --student-cpus 0.5 packs more per node"
        with caplog.at_level("WARNING"):
            fleet.warn_if_oversubscribed()
        assert "1 camera(s) ask for 64 CPU(s) but the cluster has 4" in caplog.text
        fleet.job.student_cpus = 1  # the cluster has room for that: Ray is only starting the actor's process
        (status,) = fleet.statuses(timeout=0.5)
        assert status.state == "starting" and status.error == "Ray is starting its worker process"
    finally:
        ray.kill(actor, no_restart=True)


def test_a_job_with_more_cameras_than_ray_can_place_ends_near_its_duration_and_stops_them_at_once(
        local_ray, bright_teacher_factory, tmp_path):
    path = tmp_path / "cameras.yaml"
    cameras = {f"cam-{n}": f"udp://127.0.0.1:{9 + n}" for n in range(4)}
    write_cameras(path, cameras)
    job = LiveJob(str(tmp_path / "run"), CONFIG, OPTIONS, student_cpus=64, teacher_factory=bright_teacher_factory)
    seen: list[list] = []
    started = time.monotonic()
    final = run_live(path, job, duration_s=2.0, on_status=seen.append, status_every_s=0.5)
    # Before: each camera's stop waited 60 s for an actor that never existed, one after the other.
    assert time.monotonic() - started < 2.0 + 30.0
    assert {s.camera: s.state for s in final} == dict.fromkeys(cameras, "stopped")
    assert all(s.error == "stopped before Ray started it" for s in final)
    assert seen and all(s.state == "pending" for s in seen[0])


def test_a_camera_commits_right_after_its_first_frames_not_a_whole_commit_period_later(
        local_ray, camera, bright_teacher_factory, wait_for, tmp_path):
    publisher = camera("udp")
    path = tmp_path / "cameras.yaml"
    write_cameras(path, {"porch": publisher.url})
    out = str(tmp_path / "run")
    options = LiveOptions(fps=None, commit_every_s=600.0, open_timeout_s=5, read_timeout_s=5)
    fleet = CameraFleet(path, LiveJob(out, CONFIG, options, student_cpus=0.5, teacher_factory=bright_teacher_factory))
    try:
        fleet.sync()
        wait_for(lambda: status_of(fleet, "porch").frames_this_run > 0, "the camera's first frame")
        wait_for(lambda: StreamArea(open_store(out), "porch").last_commit() is not None,
                 "the first commit (within a second of the first frame; commit_every_s is 600)", deadline_s=30)
        ray.kill(fleet.actors.pop("porch")[1], no_restart=True)  # a crash: what was committed stays
        assert StreamArea(open_store(out), "porch").last_commit().next_frame_index >= 1
    finally:
        fleet.stop_all()
