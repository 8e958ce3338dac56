import json

import numpy as np
import pyarrow.dataset as ds
import pytest

from odist.errors import StorageError
from odist.storage.layout import StreamArea, check_stream_id, done_stream_ids, stream_ids
from odist.storage.reader import decode_masks, read_stream_table, run_dataset
from odist.storage.segments import SegmentWriter


def _record(i):
    return {"frame_index": i, "timestamp": i / 30, "keyframe": i % 8 == 0, "updates": 1, "stride": 8,
            "keyframe_accuracy": None, "student_seconds": 0.01, "teacher_seconds": 0.0, "miou": 0.5,
            "miou_foreground": None}


def _write(area, frames, segment=4, start=0):
    writer = SegmentWriter(area, lambda nxt: f"state-{nxt}".encode(), segment_frames=segment)
    masks = {}
    for i in range(start, start + frames):
        masks[i] = np.full((6, 8), i % 3, np.uint8)
        writer.add(_record(i), masks[i])
    return writer, masks


def test_segments_commit_records_masks_and_state_together(store):
    area = StreamArea(store, "cam-1")
    writer, masks = _write(area, 10)
    assert [c.last_frame for c in area.commits()] == [3, 7]  # frames 8, 9 still buffered
    writer.finish({"frames": 10})
    commits = StreamArea(store, "cam-1").commits()
    assert [(c.first_frame, c.last_frame) for c in commits] == [(0, 3), (4, 7), (8, 9)]
    assert store.get(commits[-1].checkpoint) == b"state-10"
    assert not store.exists(commits[0].checkpoint)  # superseded checkpoints are dropped
    records = read_stream_table(area)
    assert records.column("frame_index").to_pylist() == list(range(10))
    decoded = decode_masks(read_stream_table(area, "masks"))
    assert all(np.array_equal(decoded[i], masks[i]) for i in range(10))
    assert area.status() == ("done", "10 frames")


def test_uncommitted_objects_are_invisible_and_swept(store):
    area = StreamArea(store, "cam")
    _write(area, 4)
    orphan = area.key("records/part-000004-000007-deadbeef.parquet")
    store.put(orphan, b"half of a crashed attempt")
    assert read_stream_table(area).num_rows == 4
    resumed = StreamArea(store, "cam")
    assert resumed.sweep_uncommitted() == [orphan]
    assert not store.exists(orphan)
    assert resumed.status() == ("partial", "at frame 4")


def test_a_segment_also_commits_once_its_oldest_frame_is_commit_every_s_old(store):
    now = [0.0]
    area = StreamArea(store, "cam-1")
    writer = SegmentWriter(area, lambda nxt: f"state-{nxt}".encode(), segment_frames=256, commit_every_s=60,
                           clock=lambda: now[0])
    for i in range(5):
        writer.add(_record(i), np.zeros((6, 8), np.uint8))
        now[0] += 20.0  # frames 0..3 are buffered over 60 s: the fourth frame commits them
    assert [(c.first_frame, c.last_frame) for c in area.commits()] == [(0, 3)]
    assert area.last_commit().next_frame_index == 4


def test_resumed_segments_continue_without_duplicates(store):
    _write(StreamArea(store, "cam"), 6)  # commits 0..3, loses 4..5 (never flushed)
    area = StreamArea(store, "cam")
    start = area.last_commit().next_frame_index
    writer, _ = _write(area, 6, start=start)
    writer.finish({})
    frames = read_stream_table(area).column("frame_index").to_pylist()
    assert frames == list(range(10))


def test_a_gap_or_overlap_is_refused(store):
    area = StreamArea(store, "cam")
    _write(area, 4)
    with pytest.raises(StorageError, match="does not follow"):
        area.commit_segment(2, 5, b"", b"", b"")


def test_failed_and_foreign_objects(store):
    area = StreamArea(store, "cam")
    area.fail("video.mp4 is corrupt")
    assert area.status() == ("failed", "video.mp4 is corrupt")
    store.put(area.key("commits/000000.json"), b"{\"hello\": 1}")
    with pytest.raises(StorageError, match="corrupt or foreign"):
        StreamArea(store, "cam").commits()


def test_newer_schema_is_refused(store):
    area = StreamArea(store, "cam")
    _write(area, 4)
    key = area.key("commits/000000.json")
    raw = json.loads(store.get(key))
    store.put(key, json.dumps({**raw, "schema_version": 99}).encode())
    with pytest.raises(StorageError, match="upgrade odist"):
        StreamArea(store, "cam").commits()


def test_run_dataset_spans_streams_with_partition_column(store):
    for sid, n in (("a", 5), ("b", 3)):
        writer, _ = _write(StreamArea(store, sid), n)
        writer.finish({})
    store.put(StreamArea(store, "a").key("records/part-000099-000100-orphan.parquet"), b"junk")
    assert stream_ids(store) == ["a", "b"]
    table = run_dataset(store).to_table(filter=ds.field("stream_id") == "b")
    assert table.num_rows == 3 and set(table.column("stream_id").to_pylist()) == {"b"}
    assert run_dataset(store).count_rows() == 8


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "-x", "x" * 200, "cam\n", "\ncam"])
def test_stream_ids_must_be_key_safe(bad):
    with pytest.raises(StorageError):
        check_stream_id(bad)


@pytest.mark.parametrize(("name", "data"), [("summary.json", b'{"frames": 1'), ("failed.json", b"\xff"),
                                            ("summary.json", b"[1, 2]")])
def test_a_corrupt_summary_or_failure_is_a_storage_error_and_lists_as_damaged(store, name, data):
    from odist.storage.listing import list_streams

    area = StreamArea(store, "cam")
    writer, _ = _write(area, 4)
    if name == "summary.json":
        writer.finish({"frames": 4})
    healthy = StreamArea(store, "fine")
    _write(healthy, 4)[0].finish({"frames": 4})
    store.put(area.key(name), data)
    with pytest.raises(StorageError, match=f"stream_id=cam/{name} is not") as refused:
        area.summary() if name == "summary.json" else area.failure()
    assert "delete it" in refused.value.fix
    rows = {row.stream_id: row for row in list_streams(store.uri)}
    assert rows["cam"].status == "damaged" and rows["cam"].detail.startswith(f"{name} is not")
    assert rows["fine"].status == "done"


def test_ls_shows_a_stream_folder_with_an_unusable_id_escaped_on_one_line(tmp_path):
    from odist.storage.listing import list_streams
    from odist.storage.objectstore import open_store

    store = open_store(str(tmp_path / "run"))  # a folder named stream_id=cam<newline>, as older odist wrote

    _write(StreamArea(store, "fine"), 4)[0].finish({"frames": 4})
    store.put("streams/stream_id=cam\n/summary.json", b"{}")
    rows = {row.stream_id: row for row in list_streams(store.uri)}
    assert rows["cam\\n"].status == "damaged" and "is not usable in object keys" in rows["cam\\n"].detail
    assert rows["fine"].status == "done"


def test_attempts_failures_and_reopening_go_through_the_area(store):
    area = StreamArea(store, "cam-2")
    area.record_attempt({"input": "a.mp4"})
    assert area.manifest() == {"input": "a.mp4", "attempt": area.attempt}
    assert not area.has_results() and area.status()[0] == "empty"
    area.fail("decoder gave up")
    assert area.status() == ("failed", "decoder gave up")
    area.clear_failure()
    assert area.failure() is None
    _write(area, 4)[0].finish({"frames": 4})
    assert area.has_results() and area.summary()["frames"] == 4 and done_stream_ids(store) == {"cam-2"}

    later = StreamArea(store, "cam-2")  # a second attempt: its record is kept, stream.json names the first
    later.record_attempt({"input": "b.mp4"})
    assert later.manifest()["attempt"] == area.attempt
    assert {key.rsplit("/", 1)[-1] for key in store.list(later.key("attempts/"))} == {
        f"{area.attempt}.json", f"{later.attempt}.json"}
    later.reopen()  # a live camera that runs again is neither done nor failed
    assert later.summary() is None and later.failure() is None and done_stream_ids(store) == set()
    assert later.has_results()  # its commits stand
