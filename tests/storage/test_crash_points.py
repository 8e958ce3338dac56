"""The crash-point matrix: a stream fails at every step of the commit protocol in turn, on a local folder and on
loopback S3, and one resume gives every frame exactly once, the masks of a run that never stopped, and the same
answer from ``odist ls`` and ``odist report``.

The store raises at each step (``storefaults.FaultyStore``, in this process); at two steps the process itself
dies (a forked child calls ``os._exit`` there). The matrix is printed as a table at the end of the module (the
docs/storage.md's crash-point table).
"""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path

import numpy as np
import pytest
from leases import expire_lease
from storefaults import EXIT_CODE, CrashPoint, FaultyStore, commit_protocol_points

import odist
from odist.errors import LeaseError, StorageError
from odist.report.report import build_report
from odist.storage.layout import StreamArea
from odist.storage.listing import list_streams
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table

FRAMES, SEGMENT = 12, 4
STREAM = "static_easy"
RUN = {"overrides": ["source.width=64", "source.height=48", f"source.frames={FRAMES}",
                     f"storage.segment_frames={SEGMENT}", "student.width=0.25", "threads=1", "distill.max_updates=2"]}
POINTS = commit_protocol_points()
# Where the process itself dies (a forked child), per backend.
DIES_AT = {"local": ("after checkpoint object, before commit record", "during summary.json"),
           "s3": ("after checkpoint object, before commit record",)}
CELLS = [(point, "raise", backend) for backend in ("local", "s3") for point in POINTS]
CELLS += [(point, "exit", backend) for backend, names in DIES_AT.items() for point in POINTS if point.name in names]
RESULTS: list[dict] = []


def _distill(out, **extra):
    return odist.distill(f"synthetic:{STREAM}", out=out, **RUN, **extra)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, one_torch_thread):
    """Records and masks of the stream run once without a fault."""
    out = str(tmp_path_factory.mktemp("whole"))
    _distill(out)
    area = StreamArea(open_store(out), STREAM)
    return read_stream_table(area), decode_masks(read_stream_table(area, "masks"))


@pytest.fixture(scope="module")
def crash_bucket(s3_endpoint):
    import boto3

    name = f"odist-crash-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module", autouse=True)
def matrix_table(request):
    """Print the matrix (step x backend: resumes, frames lost, frames duplicated) after the module."""
    yield
    if not RESULTS:
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    lines = ["", "| crash point | how | backend | resumes | frames lost | frames duplicated | masks as uninterrupted |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['point']} | {r['how']} | {r['backend']} | {r['resumes']} | {r['lost']} | {r['duplicated']} | "
              f"{'yes' if r['masks_equal'] else 'NO'} |" for r in RESULTS]
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


def _crash_in_child(out: str, point: CrashPoint) -> int:
    """Run the stream in a forked child that dies at ``point``; its exit code."""
    child = multiprocessing.get_context("fork").Process(
        target=_distill_until_death, args=(out, point), daemon=True)
    child.start()
    child.join(120)
    return child.exitcode


def _distill_until_death(out: str, point: CrashPoint) -> None:
    _distill(FaultyStore(open_store(out), point, "exit"))


def _resume_once_the_lease_is_free(out: str, died: bool) -> dict:
    """Resume the stream; a dead child's lease refuses it until the lease expires, which the test does at once."""
    if died:
        with pytest.raises(LeaseError):
            _distill(out, resume=True)
        expire_lease(StreamArea(open_store(out), STREAM))  # as waiting out its ttl (the default, 30 s) would
    return _distill(out, resume=True)


def _stream_keys(store, area: StreamArea) -> set[str]:
    """What a finished stream should hold and nothing else: every commit's data, the last checkpoint, documents."""
    commits = area.commits()
    keys = {c.records for c in commits} | {c.masks for c in commits} | {commits[-1].checkpoint}
    keys |= {c.labels for c in commits if c.labels is not None}
    keys |= {area.key(f"commits/{c.sequence:06d}.json") for c in commits}
    keys |= {area.key(name) for name in ("summary.json", "stream.json")}
    return keys | {k for k in store.list(area.key("attempts/"))}


IDS = [f"{point.name}-{how}-{backend}".replace(" ", "_").replace(",", "") for point, how, backend in CELLS]


@pytest.mark.parametrize(("point", "how", "backend"), CELLS, ids=IDS)
def test_a_crash_at_every_step_resumes_to_every_frame_once(point, how, backend, uninterrupted, tmp_path, request,
                                                          one_torch_thread):
    out = str(tmp_path / "run") if backend == "local" else \
        f"s3://{request.getfixturevalue('crash_bucket')}/{uuid.uuid4().hex[:8]}"
    if how == "exit":
        assert _crash_in_child(out, point) == EXIT_CODE
    else:
        faulty = FaultyStore(open_store(out), point)
        with pytest.raises(StorageError, match="injected fault"):
            _distill(faulty)
        assert faulty.fired

    summary = _resume_once_the_lease_is_free(out, died=how == "exit")

    store = open_store(out)
    area = StreamArea(store, STREAM)
    records, masks = read_stream_table(area), decode_masks(read_stream_table(area, "masks"))
    frames = records.column("frame_index").to_pylist()
    expected_records, expected_masks = uninterrupted
    RESULTS.append({"point": point.name, "how": "store raises" if how == "raise" else "process dies",
                    "backend": backend, "resumes": 1, "lost": len(set(range(FRAMES)) - set(frames)),
                    "duplicated": len(frames) - len(set(frames)),
                    "masks_equal": masks.keys() == expected_masks.keys()
                    and all(np.array_equal(masks[i], expected_masks[i]) for i in masks)})
    assert frames == list(range(FRAMES))  # every frame exactly once
    assert RESULTS[-1]["masks_equal"]
    for column in ("keyframe", "updates", "stride"):
        assert records.column(column).to_pylist() == expected_records.column(column).to_pylist()
    assert summary["frames"] == FRAMES
    # Nothing of the crashed attempt is left: no failed.json, no orphaned data object or checkpoint, no
    # half-written temporary file.
    assert set(store.list(area.prefix)) == _stream_keys(store, area)
    if backend == "local":
        assert not list(Path(out).rglob("*.tmp"))
    # odist ls and odist report agree on the stream.
    [row] = list_streams(out)
    assert (row.status, row.detail) == ("done", f"{FRAMES} frames")
    streams = build_report([out]).streams.to_pylist()
    assert [(s["stream_id"], s["status"], s["frames"]) for s in streams] == [(STREAM, "done", FRAMES)]
