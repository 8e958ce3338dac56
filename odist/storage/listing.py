"""What a run root holds, stream by stream."""

from __future__ import annotations

from dataclasses import dataclass

from odist.errors import InputError, StorageError
from odist.storage.documents import is_run
from odist.storage.integrity import DAMAGED, missing_objects
from odist.storage.layout import STREAMS, StreamArea, stream_ids
from odist.storage.objectstore import open_store


@dataclass(frozen=True)
class StreamStatus:
    stream_id: str
    status: str
    detail: str


def list_streams(run_uri: str) -> list[StreamStatus]:
    """Every stream under ``run_uri`` with its status; an empty or foreign root is an error."""
    store = open_store(run_uri)
    ids = stream_ids(store)
    if not ids:
        hint = "pass the --out of an odist run" if not is_run(store) else "no stream has started yet"
        raise StorageError(f"{store.uri} holds no odist streams", hint)
    areas, rows = [], []
    for sid in ids:
        try:
            areas.append(StreamArea(store, sid))
        except StorageError as exc:  # a folder no odist wrote, e.g. stream_id=cam<newline>: shown escaped
            rows.append(StreamStatus(ascii(sid)[1:-1], DAMAGED, exc.what))
    statuses = [_status(area) for area in areas]  # reads the commits before the listing below
    present = set(store.list(f"{STREAMS}/"))
    for area, (status, detail) in zip(areas, statuses, strict=True):
        missing = [] if status == DAMAGED else missing_objects(area, present)
        if missing:
            status, detail = DAMAGED, missing[0].short()
        rows.append(StreamStatus(area.stream_id, status, detail))
    return rows


def _status(area: StreamArea) -> tuple[str, str]:
    """``area.status()``; a corrupt commit record, summary.json or failed.json makes the stream ``damaged``."""
    try:
        return area.status()
    except StorageError as exc:
        return DAMAGED, exc.what.replace(area.store.url(area.prefix), "")


def stream_of_run(run_uri: str, stream_id: str) -> StreamArea:
    """The stream ``stream_id`` of the run root ``run_uri``; an ``InputError`` naming the streams there when the
    run holds no such stream."""
    store = open_store(run_uri)
    known = stream_ids(store)
    if stream_id not in known:
        choices = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        raise InputError(f"stream {stream_id!r} is not in {store.uri}",
                         f"pick one of: {choices}" if known else "check the run URI (odist ls RUN_URI)")
    return StreamArea(store, stream_id)
