"""The run layout, the same on every backend, and the commit protocol that makes it crash-safe.

::

    RUN/run.json                                       run manifest (code versions, input, config)
    RUN/fleet_summary.json                             what the last fleet job did
    RUN/live_status.json                               the live cameras' last status
    RUN/streams/stream_id=ID/records/part-AAAAAA-BBBBBB-ATTEMPT.parquet   per-frame records
    RUN/streams/stream_id=ID/masks/part-AAAAAA-BBBBBB-ATTEMPT.parquet     predicted masks (zlib-u8)
    RUN/streams/stream_id=ID/labels/part-AAAAAA-BBBBBB-ATTEMPT.parquet    keyframes' teacher labels (zlib-u8)
    RUN/streams/stream_id=ID/checkpoints/ckpt-BBBBBB-ATTEMPT.pt           student + ladder + ledger state
    RUN/streams/stream_id=ID/commits/SEQUENCE.json                        makes one segment visible
    RUN/streams/stream_id=ID/stream.json                                  what the stream is (see identity)
    RUN/streams/stream_id=ID/attempts/ATTEMPT.json                        each attempt's own stream.json
    RUN/streams/stream_id=ID/summary.json                                 the stream finished
    RUN/streams/stream_id=ID/failed.json                                  the stream failed (and why)
    RUN/streams/stream_id=ID/live.json                                    a live camera's last status
    RUN/streams/stream_id=ID/lease/GENERATION.json                        its one writer, while it writes

Data objects are written first under unique names; then a small commit record names a segment's
records, masks, teacher labels (when the segment learned from a keyframe) and checkpoint, which makes
them visible together. Readers and resume trust only
committed objects; objects no commit names (from a crashed attempt) are invisible and swept on resume.
The documents' names and the run's own documents are ``odist.storage.documents``'; a stream's documents are
read and written through its ``StreamArea`` here.
A stream has one writer at a time: the holder of its lease (``odist.storage.lease``), which every write of
a ``StreamArea`` that took it checks first.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from odist.errors import StorageError
from odist.states import StreamState
from odist.storage.atomic import json_bytes
from odist.storage.documents import ATTEMPTS, FAILED, LIVE_STATUS, STREAM_MANIFEST, SUMMARY, read_document
from odist.storage.lease import FOLDER as LEASE_FOLDER
from odist.storage.lease import LeaseSettings, StreamLease
from odist.storage.objectstore import ObjectStore
from odist.storage.schema import SCHEMA_VERSION

STREAMS = "streams"
_STREAM_FOLDER = "stream_id="
_STREAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_stream_id(stream_id: str) -> str:
    """``stream_id`` when it is safe in object keys (the whole id: no trailing newline), else a ``StorageError``."""
    if not isinstance(stream_id, str) or not _STREAM_ID.fullmatch(stream_id):
        raise StorageError(f"stream id {stream_id!r} is not usable in object keys",
                           "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return stream_id


def dumps(value: Any) -> bytes:
    """An object-store JSON document (see ``json_bytes``)."""
    return json_bytes(value)


@dataclass(frozen=True)
class Commit:
    """One committed segment: frames ``first_frame..last_frame`` and the state after them."""

    sequence: int
    first_frame: int
    last_frame: int
    next_frame_index: int
    records: str
    masks: str
    checkpoint: str
    created_unix: float
    schema_version: int = SCHEMA_VERSION
    labels: str | None = None  # the keyframes' teacher labels; None when the segment asked the teacher nothing


class StreamArea:
    """One stream's part of a run: write segments, commit them, read back what is committed."""

    def __init__(self, store: ObjectStore, stream_id: str) -> None:
        self.store = store
        self.stream_id = check_stream_id(stream_id)
        self.prefix = self.prefix_of(stream_id)
        self.attempt = uuid.uuid4().hex[:8]
        self.lease: StreamLease | None = None
        self._commits: list[Commit] | None = None

    @staticmethod
    def prefix_of(stream_id: str) -> str:
        return f"{STREAMS}/{_STREAM_FOLDER}{stream_id}/"

    def key(self, name: str) -> str:
        return self.prefix + name

    def commit_key(self, sequence: int) -> str:
        """The key of commit record ``sequence``."""
        return self.key(f"commits/{sequence:06d}.json")

    # -- writing ---------------------------------------------------------------------------------

    def writer_lease(self, settings: LeaseSettings | None = None) -> StreamLease:
        """The stream's writer lease, not yet taken (``with area.writer_lease(settings):``); every write of this
        area checks it first from now on."""
        self.lease = StreamLease(self.store, self.prefix, f"stream {self.stream_id} in {self.store.uri}", settings)
        return self.lease

    def _check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def commit_segment(self, first: int, last: int, records: bytes, masks: bytes, checkpoint: bytes, *,
                       allow_gap: bool = False, labels: bytes | None = None) -> Commit:
        """Write a segment's data objects, then its commit record; drop the superseded checkpoint.

        ``labels`` (the teacher labels of the keyframes learned from in the segment) is committed with it.

        The segment must start at the last commit's next frame; ``allow_gap`` lets it start later (a live
        camera's dropped frames), never earlier.
        """
        self._check_lease()
        previous = self.last_commit()
        expected = None if previous is None else previous.next_frame_index
        if expected is not None and (first < expected or (first > expected and not allow_gap)):
            raise StorageError(f"segment {first}..{last} of stream {self.stream_id} does not follow its last commit "
                               f"(next frame {previous.next_frame_index})", "resume the stream from its last commit")
        name = f"part-{first:06d}-{last:06d}-{self.attempt}"
        commit = Commit(
            sequence=0 if previous is None else previous.sequence + 1,
            first_frame=first, last_frame=last, next_frame_index=last + 1,
            records=self.key(f"records/{name}.parquet"), masks=self.key(f"masks/{name}.parquet"),
            checkpoint=self.key(f"checkpoints/ckpt-{last:06d}-{self.attempt}.pt"), created_unix=time.time(),
            labels=None if labels is None else self.key(f"labels/{name}.parquet"))
        self.store.put_many([(commit.records, records), (commit.masks, masks), (commit.checkpoint, checkpoint),
                             *([] if labels is None else [(commit.labels, labels)])])
        self._check_lease()  # the commit record makes the segment visible: only its writer may write it
        self.store.put(self.commit_key(commit.sequence), dumps(asdict(commit)))
        self._commits = [*self.commits(), commit]
        if previous is not None:
            self.store.delete(previous.checkpoint)
        return commit

    def rewrite_checkpoint(self, commit: Commit, data: bytes) -> None:
        """Replace the checkpoint ``commit`` names with ``data`` (a smaller one, once the stream is done)."""
        self._check_lease()
        self.store.put(commit.checkpoint, data)

    def finish(self, summary: dict[str, Any]) -> None:
        """Mark the stream done with ``summary`` (``summary.json``); a failure recorded before is dropped."""
        self._check_lease()
        self.store.delete(self.key(FAILED))
        self.store.put(self.key(SUMMARY), dumps({"schema_version": SCHEMA_VERSION, **summary}))

    def fail(self, error: str) -> None:
        """Record that the stream's last attempt failed with ``error`` (``failed.json``)."""
        self._check_lease()
        self.store.put(self.key(FAILED), dumps({"error": error, "created_unix": time.time()}))

    def clear_failure(self) -> None:
        """Drop a recorded failure: the stream is being resumed or started again."""
        self._check_lease()
        self.store.delete(self.key(FAILED))

    def reopen(self) -> None:
        """A stream that finished or failed runs again (a live camera restarted): drop its summary and failure."""
        self._check_lease()
        self.store.delete(self.key(SUMMARY))
        self.store.delete(self.key(FAILED))

    def record_attempt(self, manifest: dict[str, Any]) -> None:
        """Write this attempt's ``manifest`` under ``attempts/``; ``stream.json`` too while the stream has no commit
        (nothing it describes yet) or none."""
        self._check_lease()
        document = dumps({**manifest, "attempt": self.attempt})
        describe = self.last_commit() is None or not self.store.exists(self.key(STREAM_MANIFEST))
        self.store.put_many([(self.key(f"{ATTEMPTS}{self.attempt}.json"), document),
                             *([(self.key(STREAM_MANIFEST), document)] if describe else [])])

    def publish_live_status(self, status: dict[str, Any]) -> None:
        """A live camera's status, for people and reports (``live.json``)."""
        self.store.put(self.key(LIVE_STATUS), dumps(status))

    def sweep_uncommitted(self) -> list[str]:
        """Delete data objects that no commit names (left by a crashed attempt), checkpoints that a later commit
        superseded (a crash before they were dropped) and half-written temporary files; returns their keys."""
        self._check_lease()
        named = set()
        for commit in self.commits():
            named.update((commit.records, commit.masks, commit.labels))
        last = self.last_commit()
        if last is not None:
            named.add(last.checkpoint)
        stale = [k for k in self.store.list(self.prefix)
                 if k.rsplit("/", 2)[-2] in ("records", "masks", "labels", "checkpoints") and k not in named]
        for k in stale:
            self.store.delete(k)
        return stale + self.store.sweep_temporaries(self.prefix, skip=(self.key(LEASE_FOLDER),))

    def reset(self) -> None:
        """Delete everything of this stream but its lease (for an explicit overwrite)."""
        self._check_lease()
        for k in self.store.list(self.prefix):
            if not k.startswith(self.key(LEASE_FOLDER)):
                self.store.delete(k)
        self._commits = None

    # -- reading ---------------------------------------------------------------------------------

    def commits(self) -> list[Commit]:
        """Committed segments in order; a foreign or corrupt commit record is a clear error."""
        if self._commits is None:
            self._commits = self._read_commits()
        return list(self._commits)

    def _read_commits(self) -> list[Commit]:
        commits = []
        for k in self.store.list(self.key("commits/")):
            if not k.endswith(".json"):
                continue
            try:
                raw = json.loads(self.store.get(k))
                commit = Commit(**raw)
            except (ValueError, TypeError) as exc:
                raise StorageError(f"commit record {self.store.url(k)} is corrupt or foreign: {exc}",
                                   "remove it if it is not odist's, or restore it from a backup") from None
            if commit.schema_version > SCHEMA_VERSION:
                raise StorageError(f"{self.store.url(k)} has schema version {commit.schema_version}",
                                   f"this odist reads up to {SCHEMA_VERSION}; upgrade odist")
            commits.append(commit)
        commits.sort(key=lambda c: c.sequence)
        return commits

    def last_commit(self) -> Commit | None:
        commits = self.commits()
        return commits[-1] if commits else None

    def summary(self) -> dict[str, Any] | None:
        """The stream's ``summary.json``: None until it finished, which is what "done" means everywhere (a
        fleet's skip, a resume that returns at once, ``odist ls``); a corrupt one is a ``StorageError``."""
        return read_document(self.store, self.key(SUMMARY))

    def has_results(self) -> bool:
        """Whether the stream has anything a new start would overwrite: a commit or a summary."""
        return self.last_commit() is not None or self.store.exists(self.key(SUMMARY))

    def failure(self) -> dict[str, Any] | None:
        """The stream's ``failed.json`` (None unless its last attempt failed); a corrupt one is a ``StorageError``."""
        return read_document(self.store, self.key(FAILED))

    def manifest(self) -> dict[str, Any] | None:
        """The stream's ``stream.json`` (None where it has none); a corrupt one is a ``StorageError``."""
        return read_document(self.store, self.key(STREAM_MANIFEST))

    def status(self) -> tuple[StreamState, str]:
        """(``done`` | ``partial`` | ``failed`` | ``empty``, a detail for people)."""
        if self.summary() is not None:
            last = self.last_commit()
            return StreamState.DONE, f"{0 if last is None else last.next_frame_index} frames"
        last = self.last_commit()
        failure = self.failure()
        if failure is not None:
            at = "" if last is None else f" after frame {last.last_frame}"
            return StreamState.FAILED, f"{failure.get('error', 'unknown error')}{at}"
        if last is not None:
            return StreamState.PARTIAL, f"at frame {last.next_frame_index}"
        return StreamState.EMPTY, "nothing committed"


def stream_ids(store: ObjectStore) -> list[str]:
    """Every stream id that has anything under the run root."""
    return sorted(stream_folders(store))


def stream_folders(store: ObjectStore) -> dict[str, set[str]]:
    """Stream id -> what its folder holds, from one listing: document names, and ``commits`` (or another folder's
    name) when it has anything there."""
    found: dict[str, set[str]] = {}
    for key in store.list(f"{STREAMS}/"):
        parts = key.split("/")
        if len(parts) >= 3 and parts[1].startswith(_STREAM_FOLDER):
            found.setdefault(parts[1][len(_STREAM_FOLDER):], set()).add(parts[2])
    return found


def done_stream_ids(store: ObjectStore) -> set[str]:
    """Ids of the streams that are done (have a ``summary.json``), from one listing of the run root."""
    return {sid for sid, names in stream_folders(store).items() if SUMMARY in names}
