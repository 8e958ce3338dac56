"""A stream's writer lease, on a local folder and on loopback S3: exactly one of racing writers takes it, a live
holder keeps it past its ttl, and a dead holder's lease is taken over once it has expired."""

from __future__ import annotations

import threading
import time

import pytest

from odist.errors import LeaseError, StorageError
from odist.storage.layout import StreamArea
from odist.storage.lease import SAFE, LeaseSettings, StreamLease

PREFIX = "streams/stream_id=cam/"
FAST = LeaseSettings(ttl_s=1.5, heartbeat_s=0.15)


def lease(store, settings: LeaseSettings = FAST) -> StreamLease:
    return StreamLease(store, PREFIX, "stream cam", settings)


def die(holder: StreamLease) -> None:
    """What a SIGKILL does to a holder: its renewals stop, its lease stays behind."""
    holder._stop.set()
    holder._thread.join()


def test_a_held_lease_refuses_another_writer_in_one_line_until_dropped(store):
    first = lease(store).acquire()
    with pytest.raises(LeaseError) as refused:
        lease(store).acquire()
    assert "stream cam is being written by another odist (pid " in str(refused.value)
    assert "\n" not in str(refused.value)
    first.release()
    with lease(store) as second:
        second.check()
    assert store.list(PREFIX) == []  # a dropped lease leaves nothing behind


def test_of_racing_writers_exactly_one_takes_the_lease(store):
    start, taken, refused = threading.Barrier(6), [], []

    def race() -> None:
        contender = lease(store)
        start.wait()
        try:
            taken.append(contender.acquire())
        except LeaseError:
            refused.append(contender)

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(taken), len(refused)) == (1, 5)
    taken[0].release()


def test_a_live_holder_keeps_its_lease_past_its_ttl(store):
    with lease(store) as holder:
        time.sleep(2 * FAST.ttl_s)  # renewed all along
        holder.check()
        with pytest.raises(LeaseError, match="being written by another odist"):
            lease(store).acquire()


def test_a_dead_holders_lease_is_refused_until_it_expires_then_taken_over(store):
    dead = lease(store).acquire()
    die(dead)
    with pytest.raises(LeaseError, match=r"holds the stream for at most 1\.5 s"):
        lease(store).acquire()  # not expired yet: its holder may still be at work
    successor = lease(store, LeaseSettings(FAST.ttl_s, FAST.heartbeat_s, wait_s=10 * FAST.ttl_s)).acquire()
    assert successor.generation == dead.generation + 1
    assert store.list(PREFIX) == [f"{PREFIX}lease/{successor.generation:09d}.json"]  # the dead one's is gone
    with pytest.raises(LeaseError, match="lost its writer lease"):
        dead.check()  # had it only paused, it would stop before writing anything more
    successor.release()


def test_a_stream_area_checks_its_lease_before_every_write(store):
    area = StreamArea(store, "cam")
    holder = area.writer_lease(FAST).acquire()
    area.commit_segment(0, 3, b"r", b"m", b"c")
    area.reset()  # an overwrite keeps the lease
    assert store.list(PREFIX) == [f"{PREFIX}lease/{holder.generation:09d}.json"]
    die(holder)
    successor = lease(store, LeaseSettings(FAST.ttl_s, FAST.heartbeat_s, wait_s=10 * FAST.ttl_s)).acquire()
    for write in (lambda: area.commit_segment(0, 3, b"r", b"m", b"c"), lambda: area.fail("x"),
                  lambda: area.finish({}), area.reset, area.sweep_uncommitted):
        with pytest.raises(LeaseError, match="lost its writer lease"):
            write()
    assert StreamArea(store, "cam").commits() == [] and not store.exists(f"{PREFIX}failed.json")
    successor.release()


# -- the heartbeat, on a clock that moves only when the holder waits or renews ----------------------------

class Clock:
    """``time.monotonic`` and ``time.time`` for the lease module, read by the tests."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1.7e9 + self.now


class SlowStore:
    """A store whose every put (a renewal) takes ``put_s`` on ``clock``, and fails when ``down``."""

    def __init__(self, clock: Clock, put_s: float, down: bool = False) -> None:
        self.clock, self.put_s, self.down, self.sent = clock, put_s, down, []

    def put(self, key: str, data: bytes) -> None:
        self.sent.append(self.clock.now)
        self.clock.now += self.put_s
        if self.down:
            raise StorageError("the store cannot be reached", "try again later")


class Waits:
    """The holder's stop event: waiting moves ``clock``; it is set once ``store`` saw ``renewals`` renewals."""

    def __init__(self, clock: Clock, store: SlowStore, renewals: int) -> None:
        self.clock, self.store, self.renewals = clock, store, renewals

    def wait(self, timeout: float) -> bool:
        self.clock.now += timeout
        return len(self.store.sent) >= self.renewals


def beating(monkeypatch, put_s: float, down: bool = False, renewals: int = 1000) -> tuple[StreamLease, SlowStore]:
    """A holder of generation 1, renewed just now, that ran its heartbeat until ``renewals`` or it gave up."""
    clock = Clock()
    monkeypatch.setattr("odist.storage.lease.time", clock)
    store = SlowStore(clock, put_s, down)
    holder = lease(store, LeaseSettings(ttl_s=1.5, heartbeat_s=0.25))
    holder.generation, holder._renewed, holder._stop = 1, clock.now, Waits(clock, store, renewals)
    holder._beat()
    return holder, store


def test_renewals_are_sent_a_heartbeat_apart_however_long_each_takes(monkeypatch):
    holder, store = beating(monkeypatch, put_s=0.2, renewals=6)
    assert store.sent == pytest.approx([100.25, 100.5, 100.75, 101.0, 101.25, 101.5])
    holder.check()  # renewed all along


def test_a_holder_whose_renewals_fail_stops_before_its_lease_expires(monkeypatch):
    holder, store = beating(monkeypatch, put_s=0.05, down=True)
    assert holder.lost == "its renewals failed"
    assert len(store.sent) >= 3 and store.sent[-1] < 100 + SAFE * 1.5  # it kept trying, then gave up in time
    with pytest.raises(LeaseError, match=r"lost its writer lease \(its renewals failed\)"):
        holder.check()
