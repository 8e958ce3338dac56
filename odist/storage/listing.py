"""What a run root holds, stream by stream."""

from __future__ import annotations

from dataclasses import dataclass

from odist.errors import StorageError
from odist.storage.layout import StreamArea, stream_ids
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
        hint = "pass the --out of an odist run" if not store.exists("run.json") else "no stream has started yet"
        raise StorageError(f"{store.uri} holds no odist streams", hint)
    return [StreamStatus(sid, *StreamArea(store, sid).status()) for sid in ids]
