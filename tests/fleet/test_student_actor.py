"""The fleet's worker takes a stream's lease: a re-submitted stream waits out the lease of a worker that died
writing it, and a stream another writer holds fails alone, its failed.json left to that writer. No Ray cluster."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from odist.config import load_config
from odist.distill.options import StreamOptions
from odist.fleet.student_actor import JobOptions, StudentWorker
from odist.storage.layout import StreamArea
from odist.storage.lease import LeaseSettings
from odist.storage.objectstore import open_store
from odist.video.manifest import StreamSpec

# The workers that write keep the default lease (30 s): a loaded machine delaying a short lease's renewals could
# stop them. A worker waits out a dead writer's lease by that lease's own ttl, so the dead one's is short.
CONFIG = load_config(None, ["student.width=0.25", "threads=1"])
# A worker that must be refused only waits (storage.lease_ttl_s + storage.lease_heartbeat_s) before it gives up.
SHORT_WAIT = load_config(None, ["student.width=0.25", "threads=1", "storage.lease_ttl_s=1.5",
                                "storage.lease_heartbeat_s=0.25"])
OPTIONS = StreamOptions(frames=8, width=64, height=48)


def held_lease(out: str, stream_id: str, settings: LeaseSettings):
    return StreamArea(open_store(out), stream_id).writer_lease(settings).acquire()


def test_a_resubmitted_stream_waits_out_a_dead_workers_lease(tmp_path, one_torch_thread):
    out = str(tmp_path / "run")
    dead = held_lease(out, "s", LeaseSettings(1.5, 0.25))
    dead._stop.set()  # as a SIGKILL leaves it: no more renewals, the lease stays
    dead._thread.join()
    outcome = StudentWorker().process(StreamSpec("synthetic:static_easy", "s"), JobOptions(out, CONFIG, OPTIONS))
    assert outcome.status == "done", outcome.error
    assert StreamArea(open_store(out), "s").summary()["frames"] == 8


def test_a_stream_another_writer_holds_fails_alone_without_touching_it(tmp_path, one_torch_thread):
    out = str(tmp_path / "run")
    other = held_lease(out, "s", LeaseSettings())  # live, renewing a lease a delayed renewal cannot lose
    try:
        outcome = StudentWorker().process(StreamSpec("synthetic:static_easy", "s"),
                                          JobOptions(out, SHORT_WAIT, OPTIONS))
    finally:
        other.release()
    assert outcome.status == "failed" and "is being written by another odist" in outcome.error
    area = StreamArea(open_store(out), "s")
    assert area.failure() is None and area.commits() == []  # the holder's stream is left to the holder


def test_a_worker_that_reuses_its_student_writes_what_fresh_workers_write(tmp_path, one_torch_thread):
    import torch

    from odist.storage.checkpoint import parse_checkpoint

    specs = [StreamSpec("synthetic:static_easy", "a"), StreamSpec("synthetic:traffic", "b")]
    reused, fresh = str(tmp_path / "reused"), str(tmp_path / "fresh")
    worker = StudentWorker()
    for spec in specs:
        assert worker.process(spec, JobOptions(reused, CONFIG, OPTIONS)).status == "done"
        assert StudentWorker().process(spec, JobOptions(fresh, CONFIG, OPTIONS)).status == "done"
    for spec in specs:
        a, b = StreamArea(open_store(reused), spec.stream_id), StreamArea(open_store(fresh), spec.stream_id)
        assert a.store.get(a.commits()[0].masks) == b.store.get(b.commits()[0].masks)
        weights = [parse_checkpoint(area.store.get(area.last_commit().checkpoint), "c", CONFIG.to_dict())
                   ["state"]["distiller"]["student"] for area in (a, b)]
        assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
