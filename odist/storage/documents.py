"""The names of a run's documents, the one place odist spells them, and the run's own documents.

::

    RUN/run.json                            run manifest (code versions, input, config): ``start_run``
    RUN/fleet_summary.json                  what the last fleet job did
    RUN/live_status.json                    the live cameras' last status
    RUN/streams/stream_id=ID/stream.json    what the stream is; attempts/ATTEMPT.json: each attempt's own
    RUN/streams/stream_id=ID/summary.json   the stream finished
    RUN/streams/stream_id=ID/failed.json    the stream failed (and why)
    RUN/streams/stream_id=ID/live.json      a live camera's last status

A stream's documents are read and written through its ``odist.storage.layout.StreamArea``; no other module
spells a document's name (``tests/storage/test_document_names.py`` checks the source).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from odist.errors import StorageError
from odist.storage.atomic import json_bytes

if TYPE_CHECKING:  # the names are imported by the CLI, which must start quickly
    from odist.storage.objectstore import ObjectStore

# The run's documents, at its top.
RUN_MANIFEST = "run.json"
FLEET_SUMMARY = "fleet_summary.json"
LIVE_CAMERAS = "live_status.json"
RUN_DOCUMENTS = (RUN_MANIFEST, LIVE_CAMERAS, FLEET_SUMMARY)
# A stream's documents, in its folder.
STREAM_MANIFEST = "stream.json"
SUMMARY = "summary.json"
FAILED = "failed.json"
LIVE_STATUS = "live.json"
STREAM_DOCUMENTS = (SUMMARY, FAILED, STREAM_MANIFEST, LIVE_STATUS)
ATTEMPTS = "attempts/"
_DOCUMENT_FIX = "restore it from a backup, or delete it to resume the stream from its last commit"


def read_document(store: ObjectStore, key: str, fix: str = _DOCUMENT_FIX) -> dict[str, Any] | None:
    """The JSON object at ``key`` (None where there is none); one that is not a JSON object is a ``StorageError``."""
    data = store.get_or_none(key)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise StorageError(f"{store.url(key)} is not valid JSON: {exc}", fix) from None
    if not isinstance(value, dict):
        raise StorageError(f"{store.url(key)} is not a JSON object", fix)
    return value


def is_run(store: ObjectStore) -> bool:
    """Whether ``store`` is a run root that has begun (its ``run.json``)."""
    return store.exists(RUN_MANIFEST)


def start_run(store: ObjectStore, manifest: dict[str, Any]) -> None:
    """Write the run's ``run.json`` (code versions, input, config) unless it has one: the first start names it."""
    if not store.exists(RUN_MANIFEST):
        store.put(RUN_MANIFEST, json_bytes(manifest))


def write_fleet_summary(store: ObjectStore, summary: dict[str, Any]) -> None:
    """What the last fleet job did (``fleet_summary.json``)."""
    store.put(FLEET_SUMMARY, json_bytes(summary))


def write_live_cameras(store: ObjectStore, status: dict[str, Any]) -> None:
    """The live cameras' last status (``live_status.json``)."""
    store.put(LIVE_CAMERAS, json_bytes(status))
