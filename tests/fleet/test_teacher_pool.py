"""The teacher pool on a local Ray + Serve: correct labels for concurrent cameras, real batching,
autoscaling up and down, and no lost label when a replica is killed.

The teacher is a slow oracle (exact ground truth after sleeping per batch, so batches are observable
and cost no CPU), registered in every replica through the pool's ``setup`` hook. These tests check
behaviour, never timing: every wait is a poll with a generous deadline.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from odist.config import OdistConfig, TeacherConfig  # noqa: E402
from odist.errors import ConfigError, TeacherError  # noqa: E402
from odist.fleet.teacher_pool import (  # noqa: E402
    FrameBatcher,
    PooledTeacher,
    PoolTeacherFactory,
    TeacherPoolConfig,
    actor_pool_names,
    start_actor_pool,
    start_teacher_pool,
    stop_actor_pool,
    stop_teacher_pool,
    teacher_pool_actor_names,
    teacher_pool_replicas,
)
from odist.models.teachers.base import TeacherResult  # noqa: E402
from odist.models.teachers.oracle import OracleTeacher  # noqa: E402
from odist.video.frame import Frame  # noqa: E402

CLASSES = ("background", "person", "vehicle", "bike")
SLOW_ORACLE = "test-slow-oracle"
HEIGHT, WIDTH = 12, 16
DEADLINE_S = 120.0  # a Ray call or state on a loaded 2-core machine
SCALE_DEADLINE_S = 300.0  # Serve's autoscaler deciding, then a new replica process starting (torch imports)


def make_frame(index: int) -> Frame:
    """A tiny synthetic frame whose ground truth is a function of its index."""
    rng = np.random.default_rng(index)
    truth = rng.integers(0, len(CLASSES), size=(HEIGHT, WIDTH), dtype=np.uint8)
    return Frame(index=index, image=np.zeros((HEIGHT, WIDTH, 3), np.uint8), truth=truth)


class SlowOracle(OracleTeacher):
    """The oracle, sleeping ``delay_s`` per batch: batches become observable and cost no CPU."""

    name = SLOW_ORACLE

    def __init__(self, config: TeacherConfig, class_names: Sequence[str], delay_s: float) -> None:
        super().__init__(config, class_names)
        self.delay_s = delay_s

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        time.sleep(self.delay_s)
        return super().label(frames)


def build_slow_oracle(arg: str | None, config: TeacherConfig, class_names: Sequence[str], device: str) -> SlowOracle:
    return SlowOracle(config, class_names, float(arg or 0.2))


def register_slow_oracle() -> None:
    """The pools' replica setup: register ``test-slow-oracle[:DELAY_S]`` (default 0.2 s per batch)."""
    # Imported here: a by-value copy of the registry would register into the copy, not the replica's own.
    from odist.models.teachers.registry import TEACHERS

    if SLOW_ORACLE not in TEACHERS.names():
        TEACHERS.register(SLOW_ORACLE)(build_slow_oracle)


@ray.remote(num_cpus=0, max_concurrency=2)
class Camera:
    """A stand-in student: labels its keyframes through the pool and checks them against the truth."""

    def use(self, teacher: PooledTeacher, first_index: int) -> None:
        """Label through ``teacher`` from now on, from frame ``first_index``."""
        self.teacher = teacher
        self.next_index = first_index
        self.labelled = 0
        self.stopped = False

    def label_once(self, count: int) -> dict[str, Any]:
        frames = [make_frame(i) for i in range(self.next_index, self.next_index + count)]
        self.next_index += count
        result = self.teacher.label(frames)
        replies = self.teacher.submit(frames).replies()
        return {"wrong": _wrong(frames, [label.classes for label in result.labels]),
                "wrong_replies": _wrong(frames, [reply.labels.classes for reply in replies]),
                "seconds": result.seconds, "gflops": result.gflops,
                "batch_sizes": [reply.batch_size for reply in replies]}

    def run_until_stopped(self, chunk: int, max_seconds: float) -> dict[str, Any]:
        """Keep ``chunk`` frames in flight until ``stop()`` (or ``max_seconds``); record every outcome."""
        wrong, errors = [], []
        deadline = time.monotonic() + max_seconds
        while not self.stopped and time.monotonic() < deadline:
            frames = [make_frame(i) for i in range(self.next_index, self.next_index + chunk)]
            self.next_index += chunk
            try:
                replies = self.teacher.submit(frames).replies()
            except TeacherError as exc:
                errors.append(str(exc))
                continue
            self.labelled += len(replies)
            wrong += _wrong(frames, [reply.labels.classes for reply in replies])
        return {"labelled": self.labelled, "wrong": wrong, "errors": errors, "retries": self.teacher.retries}

    def progress(self) -> int:
        return self.labelled

    def retries(self) -> int:
        return self.teacher.retries

    def stop(self) -> None:
        self.stopped = True


def _wrong(frames: list[Frame], classes: list[np.ndarray]) -> list[int]:
    assert len(classes) == len(frames)
    return [f.index for f, c in zip(frames, classes, strict=True) if not np.array_equal(c, f.truth)]


def test_pool_config_is_validated_and_sized_from_the_batch():
    config = TeacherPoolConfig(min_replicas=1, max_replicas=3, max_batch_size=4, num_gpus=0.5, num_cpus=0.5)
    assert config.validate().ongoing_limit() == 32  # eight batches of 4: callers wait at the replica, not the router
    assert config.autoscaling_config()["target_ongoing_requests"] == 4.0
    assert config.actor_options() == {"num_gpus": 0.5, "num_cpus": 0.5}
    with pytest.raises(ConfigError, match="max_replicas"):
        TeacherPoolConfig(min_replicas=3, max_replicas=2).validate()
    with pytest.raises(ConfigError, match="max_ongoing_requests"):
        TeacherPoolConfig(max_batch_size=8, max_ongoing_requests=4).validate()
    with pytest.raises(ConfigError, match="batching"):
        TeacherPoolConfig(batching="fixed").validate()
    with pytest.raises(ConfigError, match="implementation"):
        TeacherPoolConfig(implementation="threads").validate()
    with pytest.raises(ConfigError, match=r"batching.*adaptive with pool.implementation=actors"):
        TeacherPoolConfig(implementation="actors", batching="window").validate()
    assert TeacherPoolConfig(implementation="actors", min_replicas=0).fixed_replicas() == 1


class GatedOracle(OracleTeacher):
    """The oracle whose forwards wait at a gate the test opens: what queues during a forward is what the test
    sent while it held the gate, never what a sleep let through."""

    def __init__(self) -> None:
        super().__init__(TeacherConfig(), CLASSES)
        self.forward_began = threading.Event()
        self.gate = threading.Event()

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        self.forward_began.set()
        if not self.gate.wait(DEADLINE_S):
            raise TeacherError("the test never opened the gate", "open it once the frames are queued")
        return super().label(frames)

    async def during_first_forward(self) -> None:
        """Return once a forward is running (and held at the gate)."""
        assert await asyncio.to_thread(self.forward_began.wait, DEADLINE_S), "no forward began"


def test_batcher_takes_everything_that_queued_during_the_previous_forward():
    teacher = GatedOracle()
    batcher = FrameBatcher(teacher, max_batch_size=4)
    frames = [make_frame(i) for i in range(7)]

    async def scenario() -> list[Any]:
        first = batcher.submit(frames[:1])
        await teacher.during_first_forward()  # the rest queue behind the held forward
        rest = [batcher.submit([frame])[0] for frame in frames[1:]]
        teacher.gate.set()
        return await asyncio.gather(*first, *rest)

    replies = asyncio.run(scenario())
    assert [reply.batch_size for reply in replies] == [1, 4, 4, 4, 4, 2, 2]
    assert _wrong(frames, [reply.labels.classes for reply in replies]) == []
    assert replies[0].seconds == pytest.approx(0.3) and replies[0].gflops == pytest.approx(520.0)
    assert batcher.stats.as_dict()["batch_sizes"] == {1: 1, 2: 1, 4: 1}


def test_adaptive_batcher_waits_for_the_callers_it_expects_and_not_for_a_lone_one():
    frames = [make_frame(i) for i in range(6)]

    async def lone_caller(batcher: FrameBatcher) -> list[Any]:
        # Nobody else is expected: each frame goes at once, never waiting out the (huge) gather window.
        return [await asyncio.wait_for(batcher.submit([frame])[0], DEADLINE_S / 4) for frame in frames[:3]]

    async def two_callers(batcher: FrameBatcher, teacher: GatedOracle) -> list[int]:
        sizes: list[int] = []

        async def caller(mine: list[Frame], first: bool) -> None:
            if not first:  # arrive while the first caller's forward runs, then let it finish
                await teacher.during_first_forward()
            for index, frame in enumerate(mine):  # closed loop: the next frame once this one is labelled
                reply = batcher.submit([frame])[0]
                if not first and index == 0:
                    teacher.gate.set()
                sizes.append((await reply).batch_size)

        # The second caller arrives while the first one's forward runs: both are expected from then on.
        await asyncio.gather(caller(frames[0:6:2], True), caller(frames[1:6:2], False))
        return sizes

    opened = GatedOracle()
    opened.gate.set()
    adaptive = FrameBatcher(opened, max_batch_size=4, gather_s=60.0)
    assert [reply.batch_size for reply in asyncio.run(lone_caller(adaptive))] == [1, 1, 1]
    teacher = GatedOracle()
    adaptive = FrameBatcher(teacher, max_batch_size=4, gather_s=0.5)
    # 1 (alone), then batches of 2; the last frame waits out one gather for a partner that has finished
    assert sorted(asyncio.run(two_callers(adaptive, teacher))) == [1, 1, 2, 2, 2, 2]
    teacher = GatedOracle()
    greedy = FrameBatcher(teacher, max_batch_size=4)
    assert asyncio.run(two_callers(greedy, teacher)) == [1] * 6  # without a gather the two callers never meet


def test_batcher_keeps_an_error_with_its_frame():
    batcher = FrameBatcher(OracleTeacher(TeacherConfig(), CLASSES), max_batch_size=8)
    frames = [make_frame(i) for i in range(3)]
    frames[1] = Frame(index=1, image=frames[1].image)  # no ground truth

    async def scenario() -> list[Any]:
        return await asyncio.gather(*batcher.submit(frames), return_exceptions=True)

    good, bad, also_good = asyncio.run(scenario())
    assert isinstance(bad, TeacherError) and "frame 1" in str(bad)
    assert _wrong([frames[0], frames[2]], [good.labels.classes, also_good.labels.classes]) == []


@pytest.fixture(scope="module")
def serve_cluster():
    """One local Ray (4 CPUs, no dashboard) with Serve (no HTTP proxy) for the whole module."""
    # The slow oracle and the cameras live in this module, which Ray's workers cannot import: ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, namespace="odist-teacher-pool-tests")
    serve.start(proxy_location="Disabled")
    yield
    if started:
        serve.shutdown()
        ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cameras(serve_cluster):
    """Three camera actors, shared by the tests (each test points them at its own pool)."""
    actors = [Camera.remote() for _ in range(3)]
    yield actors
    for actor in actors:
        ray.kill(actor)


def start_pool(name: str, spec: str, **settings: Any) -> tuple[Any, TeacherPoolConfig]:
    settings.setdefault("num_cpus", 0.25)
    pool_config = TeacherPoolConfig(**settings)
    handle = start_teacher_pool(pool_config, spec, TeacherConfig(), CLASSES, name=name, setup=register_slow_oracle)
    return handle, pool_config


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {deadline_s:.0f} s waiting for {what}")
        time.sleep(0.5)


def use_pool(cameras: list[Any], teacher: PooledTeacher, first_index: int) -> None:
    ray.get([camera.use.remote(teacher, first_index + 10_000 * k) for k, camera in enumerate(cameras)],
            timeout=DEADLINE_S)


def start_load(cameras: list[Any], teacher: PooledTeacher, chunk: int, first_index: int) -> list[Any]:
    """Every camera keeps ``chunk`` frames in flight; returns once each one has labelled through ``teacher``."""
    use_pool(cameras, teacher, first_index)
    ray.get([camera.label_once.remote(1) for camera in cameras], timeout=DEADLINE_S)
    # The load lasts until ``stop_load`` (the cap only ends a forgotten load), so it outlasts every wait on it.
    return [camera.run_until_stopped.remote(chunk, 3 * SCALE_DEADLINE_S) for camera in cameras]


def labelled_so_far(actors: list[Any]) -> int:
    return sum(ray.get([actor.progress.remote() for actor in actors], timeout=DEADLINE_S))


def stop_load(actors: list[Any], loads: list[Any]) -> list[dict[str, Any]]:
    ray.get([actor.stop.remote() for actor in actors], timeout=DEADLINE_S)
    outcomes = ray.get(loads, timeout=DEADLINE_S)
    for outcome in outcomes:
        assert outcome["labelled"] > 0 and outcome["wrong"] == [] and outcome["errors"] == [], outcome
    return outcomes


def running(name: str) -> int:
    return teacher_pool_replicas(name).get("RUNNING", 0)


@pytest.fixture(scope="module")
def batch_pool(serve_cluster):
    """One replica that sleeps 0.2 s per batch of up to 8 frames."""
    name = "tp-batch"
    handle, pool_config = start_pool(name, f"{SLOW_ORACLE}:0.2", min_replicas=1, max_replicas=1, max_batch_size=8)
    yield handle, pool_config, name
    stop_teacher_pool(name)


def test_concurrent_cameras_get_correct_labels_in_real_batches(batch_pool, cameras):
    handle, pool_config, name = batch_pool
    teacher = PooledTeacher.for_pool(handle, CLASSES, pool_config, pool_name=name)
    use_pool(cameras, teacher, first_index=0)
    frames_before = handle.stats.remote().result(timeout_s=DEADLINE_S)["frames"]
    rounds = [camera.label_once.remote(8) for camera in cameras for _ in range(2)]
    outcomes = ray.get(rounds, timeout=DEADLINE_S)

    for outcome in outcomes:
        assert outcome["wrong"] == [] and outcome["wrong_replies"] == []
        assert outcome["seconds"] == pytest.approx(8 * 0.3)  # the oracle's charged 300 ms per frame
        assert outcome["gflops"] == pytest.approx(8 * 520.0)
    sizes = [size for outcome in outcomes for size in outcome["batch_sizes"]]
    assert max(sizes) > 1 and max(sizes) <= pool_config.max_batch_size

    stats = handle.stats.remote().result(timeout_s=DEADLINE_S)
    # label() and replies() each label every frame once; the one replica saw them all
    assert stats["frames"] - frames_before == 2 * len(outcomes) * 8
    assert sum(size * count for size, count in stats["batch_sizes"].items()) == stats["frames"]
    assert stats["batches"] < stats["frames"] and max(stats["batch_sizes"]) > 1
    assert teacher.gflops_per_frame(HEIGHT, WIDTH) == pytest.approx(520.0)


def test_the_pool_factory_gives_streams_the_pooled_teacher(batch_pool):
    handle, pool_config, name = batch_pool
    factory = PoolTeacherFactory(handle, CLASSES, pool_config, pool_name=name)
    teacher = factory(OdistConfig(classes=CLASSES))
    assert isinstance(teacher, PooledTeacher) and teacher.pool_name == name
    frames = [make_frame(i) for i in range(3)]
    assert _wrong(frames, [label.classes for label in teacher.label(frames).labels]) == []
    pending = teacher.submit(frames)
    assert factory.requests_in_flight() == 3  # the driver's teacher queue depth counts them until answered
    pending.replies()
    assert factory.requests_in_flight() == 0
    teacher.submit(frames).cancel()
    assert factory.requests_in_flight() == 0
    with pytest.raises(TeacherError, match="classes"):
        factory(OdistConfig(classes=("background", "person")))


def test_a_bad_frame_fails_alone_with_its_index(batch_pool):
    handle, pool_config, name = batch_pool
    teacher = PooledTeacher.for_pool(handle, CLASSES, pool_config, pool_name=name)
    frames = [make_frame(i) for i in range(5)]
    frames[3] = Frame(index=3, image=frames[3].image)  # no ground truth: the oracle cannot label it
    pending = teacher.submit(frames)
    with pytest.raises(TeacherError, match=r"tp-batch.*frame 3.*no ground truth"):
        pending.result()
    good = teacher.label([f for f in frames if f.truth is not None])
    assert _wrong([f for f in frames if f.truth is not None], [label.classes for label in good.labels]) == []


def test_a_pool_that_cannot_be_placed_fails_at_start(serve_cluster):
    with pytest.raises(TeacherError, match=r"tp-nogpu.*not running after 3 s"):
        start_pool("tp-nogpu", "oracle", min_replicas=1, max_replicas=1, num_gpus=1, start_timeout_s=3,
                   graceful_shutdown_timeout_s=0.5)
    assert teacher_pool_replicas("tp-nogpu") == {}  # nothing left waiting for a GPU


def test_a_teacher_that_cannot_be_built_fails_at_start(serve_cluster):
    with pytest.raises(TeacherError, match=r"tp-bad.*failed to start.*oracle teacher takes no argument"):
        start_pool("tp-bad", "oracle:nonsense", min_replicas=1, max_replicas=1, max_constructor_retries=1)
    assert teacher_pool_replicas("tp-bad") == {}


# A look-back shorter than Serve's metrics interval only draws a FutureWarning; it keeps the test short.
@pytest.mark.filterwarnings("ignore:`look_back_period_s`:FutureWarning")
def test_autoscaling_adds_replicas_under_load_and_removes_them_when_idle(cameras):
    name = "tp-scale"
    handle, pool_config = start_pool(
        name, f"{SLOW_ORACLE}:0.3", min_replicas=1, max_replicas=3, max_batch_size=2, target_ongoing_requests=2,
        upscale_delay_s=1.0, downscale_delay_s=2.0, look_back_period_s=2.0)
    try:
        assert running(name) == 1
        teacher = PooledTeacher.for_pool(handle, CLASSES, pool_config, pool_name=name)
        loads = start_load(cameras, teacher, chunk=4, first_index=100_000)
        wait_for(lambda: running(name) >= 2, "a second replica under load", SCALE_DEADLINE_S)
        stop_load(cameras, loads)
        wait_for(lambda: teacher_pool_replicas(name) == {"RUNNING": 1}, "the pool to shrink back to 1 replica",
                 SCALE_DEADLINE_S)
    finally:
        stop_teacher_pool(name)


def test_a_killed_replica_loses_no_label_request(cameras):
    name = "tp-kill"
    handle, pool_config = start_pool(name, f"{SLOW_ORACLE}:0.5", min_replicas=2, max_replicas=2, max_batch_size=4)
    try:
        wait_for(lambda: running(name) == 2, "two running replicas", SCALE_DEADLINE_S)
        teacher = PooledTeacher.for_pool(handle, CLASSES, pool_config, pool_name=name)
        loads = start_load(cameras, teacher, chunk=4, first_index=200_000)
        wait_for(lambda: labelled_so_far(cameras) >= 24, "the cameras to get going")
        # A kill can fall between two batches of its replica; kill again (Serve replaces each victim)
        # until one has provably hit requests in flight.
        for _ in range(4):
            wait_for(lambda: running(name) == 2, "two running replicas", SCALE_DEADLINE_S)
            victim = teacher_pool_actor_names(name)[0]
            ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
            before = labelled_so_far(cameras)
            wait_for(lambda before=before: labelled_so_far(cameras) >= before + 48, "labelling to go on after the kill")
            if retries_so_far(cameras) > 0:
                break
        outcomes = stop_load(cameras, loads)
    finally:
        stop_teacher_pool(name)
    assert sum(outcome["retries"] for outcome in outcomes) >= 1  # a kill did hit requests in flight


def retries_so_far(actors: list[Any]) -> int:
    return sum(ray.get([actor.retries.remote() for actor in actors], timeout=DEADLINE_S))


# -- the actor pool (pool.implementation: actors) ------------------------------------------------------


def start_actors(name: str, spec: str, **settings: Any) -> tuple[Any, TeacherPoolConfig]:
    settings.setdefault("num_cpus", 0.25)
    pool_config = TeacherPoolConfig(implementation="actors", **settings)
    handle = start_actor_pool(pool_config, spec, TeacherConfig(), CLASSES, name=name, setup=register_slow_oracle)
    return handle, pool_config


def test_the_actor_pool_labels_every_camera_in_batches_and_counts_what_is_in_flight(cameras):
    name = "ap-batch"
    handle, pool_config = start_actors(name, f"{SLOW_ORACLE}:0.2", min_replicas=2, max_batch_size=8)
    try:
        assert actor_pool_names(name) == [f"{name}#actor-0", f"{name}#actor-1"]
        teacher = PooledTeacher.for_pool(handle, CLASSES, pool_config, pool_name=name)
        use_pool(cameras, teacher, first_index=300_000)
        outcomes = ray.get([camera.label_once.remote(8) for camera in cameras for _ in range(2)], timeout=DEADLINE_S)
        for outcome in outcomes:
            assert outcome["wrong"] == [] and outcome["wrong_replies"] == []
            assert outcome["seconds"] == pytest.approx(8 * 0.3)
        sizes = [size for outcome in outcomes for size in outcome["batch_sizes"]]
        assert 1 < max(sizes) <= pool_config.max_batch_size
        stats = [actor.stats.remote() for actor in handle.actors]
        frames = [s["frames"] for s in ray.get(stats, timeout=DEADLINE_S)]
        assert sum(frames) == 2 * len(outcomes) * 8 and min(frames) > 0  # both replicas took a share
        factory = PoolTeacherFactory(handle, CLASSES, pool_config, pool_name=name)
        pending = factory.teacher.submit([make_frame(i) for i in range(3)])
        assert factory.requests_in_flight() == 3
        pending.replies()
        assert factory.requests_in_flight() == 0
        assert factory.teacher.gflops_per_frame(HEIGHT, WIDTH) == pytest.approx(520.0)
    finally:
        stop_actor_pool(name)
    assert actor_pool_names(name) == []


def test_a_killed_actor_replica_is_restarted_and_loses_no_label_request(cameras):
    name = "ap-kill"
    handle, pool_config = start_actors(name, f"{SLOW_ORACLE}:0.5", min_replicas=2, max_batch_size=4)
    try:
        teacher = PooledTeacher.for_pool(handle, CLASSES, pool_config, pool_name=name)
        loads = start_load(cameras, teacher, chunk=4, first_index=400_000)
        wait_for(lambda: labelled_so_far(cameras) >= 24, "the cameras to get going")
        for _ in range(4):  # until a kill has provably hit requests in flight
            ray.kill(handle.actors[0], no_restart=False)
            before = labelled_so_far(cameras)
            wait_for(lambda before=before: labelled_so_far(cameras) >= before + 48, "labelling to go on after the kill")
            if retries_so_far(cameras) > 0:
                break
        outcomes = stop_load(cameras, loads)
        assert ray.get(handle.actors[0].class_names.remote(), timeout=SCALE_DEADLINE_S) == list(CLASSES)  # restarted
    finally:
        stop_actor_pool(name)
    assert sum(outcome["retries"] for outcome in outcomes) >= 1


def test_an_actor_pool_whose_teacher_cannot_be_built_fails_at_start(serve_cluster):
    with pytest.raises(TeacherError, match=r"ap-bad.*failed to start.*oracle teacher takes no argument"):
        start_actors("ap-bad", "oracle:nonsense", min_replicas=1)
    assert actor_pool_names("ap-bad") == []


class _FakeMethod:
    def __init__(self, index: int) -> None:
        self.index = index

    def remote(self, *args: Any) -> int:
        return self.index


class _FakeActor:
    def __init__(self, index: int) -> None:
        self.label = _FakeMethod(index)


def test_the_actor_handle_leaves_a_failed_replica_out_while_another_is_up(monkeypatch):
    from types import SimpleNamespace

    from odist.fleet.teacher_pool import actor_pool

    def replica_lost(ref: int, timeout: float | None = None) -> Any:
        raise ray.exceptions.RayActorError()

    monkeypatch.setattr(actor_pool, "ray", SimpleNamespace(get=replica_lost, exceptions=ray.exceptions))
    handle = actor_pool.ActorPoolHandle([_FakeActor(0), _FakeActor(1)])
    first = handle.label.remote("frame")
    assert first._index == 0
    with pytest.raises(ray.exceptions.RayActorError):
        first.result(timeout_s=1)
    # Replica 0 has nothing in flight now, yet every request goes to replica 1 until its pause is over.
    assert [handle.label.remote("frame")._index for _ in range(3)] == [1, 1, 1]
    handle._left_out_until[1] = time.monotonic() + actor_pool.LOST_REPLICA_PAUSE_S
    assert handle.label.remote("frame")._index == 0  # every replica out: the one with the fewest in flight
    handle._left_out_until = [0.0, 0.0]
    assert handle.label.remote("frame")._index == 0  # both back: replica 1 still holds three


class _RestartingReplica:
    """A fake pool handle whose replica refuses ``refusals`` requests (Ray restarting it), then answers."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.label = self

    def remote(self, frame: Any) -> _RestartingReplica:
        return self

    def result(self, timeout_s: float | None = None) -> str:
        if self.refusals > 0:
            self.refusals -= 1
            raise ray.exceptions.ActorUnavailableError("restarting", None)
        return "labels"

    def cancel(self) -> None:
        pass


def test_a_restarting_replica_is_waited_for_without_spending_tries_until_the_request_times_out():
    from odist.fleet.teacher_pool.client import _Call

    teacher = PooledTeacher(_RestartingReplica(3), CLASSES, max_retries=0, retry_backoff_s=0.001)
    assert _Call(teacher, "label", ("frame",), "frame 1").wait() == "labels"
    assert teacher.retries == 3 and teacher.in_flight == 0
    teacher = PooledTeacher(_RestartingReplica(10**9), CLASSES, max_retries=0, retry_backoff_s=0.001,
                            request_timeout_s=0.05)
    with pytest.raises(TeacherError, match="no answer after 1 tries, last error: ActorUnavailableError"):
        _Call(teacher, "label", ("frame",), "frame 1").wait()
