"""The fleet on a local Ray: a manifest runs to the end around a corrupt stream, re-runs skip done streams,
fractional students pack onto a (fake) GPU, and a killed student resumes from its last commit."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from fresh import fresh_process  # noqa: E402

from odist.cli import main  # noqa: E402
from odist.config import load_config  # noqa: E402
from odist.distill.options import StreamOptions  # noqa: E402
from odist.fleet.driver import FLEET_SUMMARY, run_fleet  # noqa: E402
from odist.fleet.prewarm import worker_runtime_env  # noqa: E402
from odist.fleet.student_actor import JobOptions, LocalTeacherFactory, StudentWorker, start_worker  # noqa: E402
from odist.models.teachers import Teacher  # noqa: E402
from odist.storage.layout import StreamArea  # noqa: E402
from odist.storage.listing import list_streams  # noqa: E402
from odist.storage.objectstore import open_store  # noqa: E402
from odist.storage.reader import read_stream_table  # noqa: E402
from odist.video.manifest import StreamSpec  # noqa: E402

TINY = ["--width", "96", "--height", "64", "--frames", "24", "--quiet",
        "--set", "student.width=0.25", "--set", "threads=1"]
STREAMS = {"cam-a": "synthetic:static_easy", "cam-b": "synthetic:traffic", "cam-c": "synthetic:nonstationary",
           "cam-d": "synthetic:static_easy"}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module: 4 CPUs and one fake GPU, workers pre-warmed (``fleet.prewarm_workers``);
    test-defined teachers travel by value."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, logging_level="ERROR",
             runtime_env=worker_runtime_env(True))
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """Four tiny synthetic streams and one corrupt video (random bytes named .mp4)."""
    folder = tmp_path_factory.mktemp("archive")
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    rows = [{"uri": uri, "stream_id": sid} for sid, uri in STREAMS.items()] + [{"uri": "corrupt.mp4"}]
    path = folder / "streams.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def first_run(manifest, tmp_path_factory):
    """``odist run`` over the manifest: (exit code, stdout, run root)."""
    out = tmp_path_factory.mktemp("fleet") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["run", str(manifest), "--out", str(out), "--workers", "2", "--evaluate", *TINY])
    return rc, stdout.getvalue(), out


def _commit_keys(out: Path) -> dict[str, list[str]]:
    store = open_store(str(out))
    return {sid: [c.checkpoint for c in StreamArea(store, sid).commits()] for sid in STREAMS}


def test_a_corrupt_stream_fails_alone_and_the_job_completes(first_run):
    rc, stdout, out = first_run
    assert rc == 1, stdout  # some streams failed
    assert "4 done, 1 failed" in stdout and "corrupt" in stdout
    status = {row.stream_id: (row.status, row.detail) for row in list_streams(str(out))}
    assert {sid: s for sid, (s, _) in status.items()} == {**dict.fromkeys(STREAMS, "done"), "corrupt": "failed"}
    assert "corrupt.mp4" in status["corrupt"][1]
    for sid in STREAMS:
        frames = read_stream_table(StreamArea(open_store(str(out)), sid)).column("frame_index").to_pylist()
        assert frames == list(range(24))
    summary = json.loads((out / FLEET_SUMMARY).read_text())
    assert (summary["done"], summary["failed"], summary["skipped"], summary["frames"]) == (4, 1, 0, 96)
    assert [f["stream_id"] for f in summary["failures"]] == ["corrupt"]


def test_the_job_ends_with_accuracy_speed_up_and_the_next_commands(first_run):
    _, stdout, out = first_run
    summaries = {sid: json.loads((out / "streams" / f"stream_id={sid}" / "summary.json").read_text())
                 for sid in STREAMS}
    worst = min(summaries, key=lambda sid: summaries[sid]["miou"])
    assert "results of the 4 stream(s) finished by this job" in stdout
    assert f"  mIoU: mean {np.mean([s['miou'] for s in summaries.values()]):.3f}, std " in stdout
    assert re.search(rf"^    {worst}\s+{summaries[worst]['miou']:.3f}\s", stdout, re.MULTILINE), stdout
    assert f"next: odist report {out}" in stdout and f"odist render {out} --stream {worst}" in stdout


def test_resubmitting_the_job_skips_done_streams(first_run, manifest):
    _, _, out = first_run
    before = _commit_keys(out)
    summaries = {sid: (out / "streams" / f"stream_id={sid}" / "summary.json").read_bytes() for sid in STREAMS}
    config = load_config(None, ["student.width=0.25", "threads=1"])
    again = run_fleet(str(manifest), str(out), config, workers=2, progress=False,
                      options=StreamOptions(width=96, height=64, frames=24))
    assert (again.done, again.failed, again.skipped) == (0, 1, 4)
    assert _commit_keys(out) == before
    assert all((out / "streams" / f"stream_id={sid}" / "summary.json").read_bytes() == summaries[sid]
               for sid in STREAMS)


def test_fractional_students_pack_four_per_gpu():
    workers = [start_worker(student_gpus=0.25) for _ in range(5)]
    try:
        pings = [worker.ping.remote() for worker in workers]
        ready, pending = ray.wait(pings, num_returns=4, timeout=120)
        assert len(ready) == 4, "four quarter-GPU students did not start on one GPU"
        assert ray.available_resources().get("GPU", 0.0) == 0.0  # the four shares hold the whole GPU
        fifth = workers[pings.index(pending[0])]
        state = ray._private.state.actors(fifth._actor_id.hex())["State"]
        assert state in ("PENDING_CREATION", "DEPENDENCIES_UNREADY"), f"a fifth quarter-GPU student is {state}"
        infos = ray.get(ready)
        assert all(info["gpu_ids"] == [0] for info in infos)
        assert all(info["prewarmed_s"] is not None for info in infos)  # the job's setup hook ran in each
        ray.kill(workers[pings.index(ready[0])])
        assert ray.get(pending[0], timeout=120)["gpu_ids"] == [0]  # it starts once a share is free
    finally:
        for worker in workers:
            ray.kill(worker)


# A killed worker's lease lives on until it expires; the retry waits it out (storage.lease_ttl_s).
SHORT_LEASE = ["storage.lease_ttl_s=3", "storage.lease_heartbeat_s=0.5"]


class KillingTeacherFactory:
    """A teacher factory whose teacher kills its own worker (``ray.kill``) at the first keyframe >= ``at_frame``.

    It does so ``kills`` times in all (counted in the ``log`` file, one labelled frame index per kill);
    after that the retried worker labels normally.
    """

    def __init__(self, log: str, at_frame: int, kills: int = 1) -> None:
        self.log, self.at_frame, self.kills = log, at_frame, kills

    def __call__(self, config):
        return _KillingTeacher(LocalTeacherFactory()(config), self)


class _KillingTeacher(Teacher):
    def __init__(self, inner: Teacher, plan: KillingTeacherFactory) -> None:
        super().__init__(inner.class_names)
        self.inner, self.plan, self.name = inner, plan, inner.name

    def label(self, frames):
        log = Path(self.plan.log)
        done = log.read_text().split() if log.exists() else []
        if frames[0].index >= self.plan.at_frame and len(done) < self.plan.kills:
            log.write_text(" ".join([*done, str(frames[0].index)]))
            ray.kill(ray.get_runtime_context().current_actor)
            time.sleep(120)
        return self.inner.label(frames)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return self.inner.gflops_per_frame(height, width)


def test_a_killed_student_resumes_from_its_last_commit_every_frame_once(tmp_path):
    kills = tmp_path / "kills"
    config = load_config(None, ["student.width=0.25", "threads=1", "distill.strides=[8]", *SHORT_LEASE])
    options = StreamOptions(width=96, height=64, frames=40, segment_frames=8)
    summary = run_fleet("synthetic:static_easy", str(tmp_path / "run"), config, workers=1, progress=False,
                        options=options, teacher_factory=KillingTeacherFactory(str(kills), at_frame=20))
    assert kills.read_text() == "24"  # killed while labelling frame 24, after frames 0..23 were committed
    assert (summary.done, summary.failed, summary.retries) == (1, 0, 1)
    area = StreamArea(open_store(str(tmp_path / "run")), "static_easy")
    assert [c.first_frame for c in area.commits()] == [0, 8, 16, 24, 32]
    assert read_stream_table(area).column("frame_index").to_pylist() == list(range(40))
    assert area.summary()["frames"] == 40
    assert summary.frames == 16  # the retry processed only the frames after the last commit


def test_a_stream_whose_worker_keeps_dying_fails_after_its_retries(tmp_path):
    kills = tmp_path / "kills"
    config = load_config(None, ["student.width=0.25", "threads=1", "distill.strides=[8]", *SHORT_LEASE])
    options = StreamOptions(width=96, height=64, frames=16, segment_frames=8)
    summary = run_fleet("synthetic:traffic", str(tmp_path / "run"), config, workers=1, retries=1, progress=False,
                        options=options, teacher_factory=KillingTeacherFactory(str(kills), at_frame=8, kills=2))
    assert kills.read_text().split() == ["8", "8"]
    assert (summary.done, summary.failed, summary.retries) == (0, 1, 1)
    status, detail = StreamArea(open_store(str(tmp_path / "run")), "traffic").status()
    assert status == "failed" and "lost 2 times" in detail and detail.endswith("after frame 7")


def test_unexpected_errors_in_a_stream_are_recorded_not_raised(tmp_path):
    def broken(config):
        raise RuntimeError("teacher exploded")

    worker = StudentWorker(broken)
    job = JobOptions(str(tmp_path), load_config(None, ["student.width=0.25"]), StreamOptions(frames=4, width=96,
                                                                                             height=64))
    outcome = worker.process(StreamSpec("synthetic:static_easy", "s"), job)
    assert (outcome.status, outcome.error) == ("failed", "RuntimeError: teacher exploded")
    assert StreamArea(open_store(str(tmp_path)), "s").failure()["error"] == "RuntimeError: teacher exploded"
    assert worker.progress() is None


@pytest.mark.parametrize("implementation", ["serve", "actors"])
def test_a_shared_teacher_pool_labels_every_stream(tmp_path, implementation):
    from ray import serve

    from odist.fleet.teacher_pool import actor_pool_names

    out = tmp_path / "pooled"
    rows = [{"uri": "synthetic:static_easy", "stream_id": "p1"}, {"uri": "synthetic:traffic", "stream_id": "p2"}]
    manifest = tmp_path / "pooled.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["run", str(manifest), "--out", str(out), "--workers", "2", "--teacher-replicas", "1:1",
                   "--set", f"pool.implementation={implementation}", "--evaluate", *TINY])
    assert rc == 0 and "2 done, 0 failed" in stdout.getvalue(), stdout.getvalue()
    for sid in ("p1", "p2"):
        summary = StreamArea(open_store(str(out)), sid).summary()
        assert summary["keyframes"] > 0 and summary["ledger"]["teacher_frames"] == summary["keyframes"]
        assert summary["miou"] is not None
    # the pool is stopped with the job
    assert actor_pool_names() == [] and "odist-teacher" not in serve.status().applications


def test_fleet_warm_starts_take_the_latest_finished_student_of_the_group_else_the_latest(first_run, tmp_path):
    _, _, earlier = first_run
    store = open_store(str(earlier))
    given, row_init = (StreamArea(store, sid).summary()["checkpoint"] for sid in ("cam-a", "cam-b"))
    rows = [{"uri": "synthetic:static_easy", "stream_id": "a", "group": "site-1"},
            {"uri": "synthetic:traffic", "stream_id": "b", "group": "site-2"},
            {"uri": "synthetic:static_easy", "stream_id": "c", "group": "site-1"},
            {"uri": "synthetic:traffic", "stream_id": "d", "init": row_init},
            {"uri": "synthetic:static_easy", "stream_id": "e"}]
    manifest = tmp_path / "sites.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    tiny = [*TINY[:4], "--frames", "8", *TINY[6:]]
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["run", str(manifest), "--out", str(out), "--workers", "1", "--init", given,
                   "--warm-start", "fleet", *tiny])
    assert rc == 0
    run = open_store(str(out))
    began = {sid: json.loads(run.get(StreamArea.prefix_of(sid) + "stream.json"))["init"] for sid in "abcde"}
    checkpoint = {sid: StreamArea(run, sid).summary()["checkpoint"] for sid in "abcd"}
    # a: nothing finished yet, so --init; b: no site-2 student yet, so the latest (a); c: site-1's latest (a,
    # not b); d: its manifest init; e: no group, so the latest finished student (d)
    expected = {"a": (given, "--init"), "b": (checkpoint["a"], "fleet:a"), "c": (checkpoint["a"], "fleet:a"),
                "d": (row_init, "manifest"), "e": (checkpoint["d"], "fleet:d")}
    assert {sid: (b["uri"], b["chosen_by"]) for sid, b in began.items()} == expected


def test_the_fleet_driver_and_the_library_run_import_no_torch():
    # The driver holds only specs and counts; torch (hundreds of MB) belongs in the workers.
    assert fresh_process(
        "import sys; import odist.fleet.driver, odist.fleet.api; "
        "from odist.distill.options import StreamOptions, run_manifest; "
        "manifest = run_manifest(); StreamOptions(width=64).open; "
        "print('torch' in sys.modules, manifest['torch_version'] is not None)") == "False True"


@ray.remote(max_concurrency=2)
class SlowToStartWorker:
    """A worker whose process takes a while to start, then a while on its stream before its first frame."""

    def __init__(self) -> None:
        time.sleep(3)
        self.busy = False

    def progress(self):
        from odist.fleet.student_actor import WorkerProgress

        return WorkerProgress("slow") if self.busy else None

    def process(self, spec, job):
        from odist.fleet.student_actor import StreamOutcome

        self.busy = True
        time.sleep(3)
        return StreamOutcome(spec.stream_id, "failed", error="a stand-in worker")


def test_the_progress_line_says_whether_workers_are_starting_or_loading_while_frames_stay_at_0(tmp_path):
    from odist.fleet.progress import FleetProgress
    from odist.fleet.scheduler import FleetScheduler

    class Recorder(FleetProgress):
        def __init__(self) -> None:
            super().__init__(total=1, enabled=False)
            self.bar, self.seen = object(), []

        def update(self, counts) -> None:
            self.seen.append(counts)

    display = Recorder()
    driver = FleetScheduler([(0, StreamSpec("synthetic:static_easy", "slow"))],
                         JobOptions(str(tmp_path / "run"), load_config(environ={})),
                         lambda: SlowToStartWorker.remote(), worker_count=1, display=display, poll_seconds=0.2)
    driver.run()
    assert any(c.starting == 1 and c.frames == 0 for c in display.seen)
    assert any(c.starting == 0 and c.loading == 1 for c in display.seen)
