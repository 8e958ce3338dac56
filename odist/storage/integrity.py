"""Committed objects that have gone missing: found with one listing, reported naming the commit and the key.

A commit record names its segment's records, masks and teacher labels (kept for ever) and a checkpoint (kept until
the next commit). An object a commit names but the store no longer holds (deleted by hand, lost to a
bucket policy) makes the stream's committed frames incomplete: ``odist ls`` shows the stream as
``damaged``, and ``odist report`` and a resume refuse it, each in one line that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from odist.errors import StorageError
from odist.states import StreamState
from odist.storage.layout import STREAMS, StreamArea
from odist.storage.objectstore import ObjectStore

DAMAGED = StreamState.DAMAGED


@dataclass(frozen=True)
class MissingObject:
    """A key a commit record names that the store does not hold."""

    stream_id: str
    commit: str  # the commit record's key
    key: str  # the missing object's key

    def short(self) -> str:
        """For ``odist ls``: keys relative to the stream's folder."""
        prefix = StreamArea.prefix_of(self.stream_id)
        return f"commit {self.commit.removeprefix(prefix)} names {self.key.removeprefix(prefix)}, which is missing"

    def error(self, store: ObjectStore) -> StorageError:
        return StorageError(
            f"stream {self.stream_id}: commit {store.url(self.commit)} names {self.key.rsplit('/', 2)[-2]} "
            f"{store.url(self.key)}, which is missing",
            f"restore that object from a backup, or start the stream over (odist distill --overwrite "
            f"--stream-id {self.stream_id}, or delete {store.url(StreamArea.prefix_of(self.stream_id))} "
            "and run it again)")


def missing_objects(area: StreamArea, present: Iterable[str] | None = None, *,
                    checkpoint: bool = False) -> list[MissingObject]:
    """The objects ``area``'s commits name that are not in ``present`` (default: one listing of the stream).

    ``checkpoint`` also checks the last commit's checkpoint (what a resume loads). Read the commits
    before listing: objects are written before the commit record that names them.
    """
    commits = area.commits()
    if not commits:
        return []
    keys = set(area.store.list(area.prefix) if present is None else present)
    missing = []
    for commit in commits:
        wanted = [commit.records, commit.masks, *([] if commit.labels is None else [commit.labels])]
        if checkpoint and commit is commits[-1]:
            wanted.append(commit.checkpoint)
        commit_key = area.commit_key(commit.sequence)
        missing += [MissingObject(area.stream_id, commit_key, key) for key in wanted if key not in keys]
    return missing


def require_complete(area: StreamArea, *, checkpoint: bool = False) -> None:
    """Raise the first missing object of ``area`` as a one-line ``StorageError``."""
    missing = missing_objects(area, checkpoint=checkpoint)
    if missing:
        raise missing[0].error(area.store)


def require_run_complete(store: ObjectStore, stream_ids: Iterable[str]) -> None:
    """Raise the first missing object of any stream of the run (its commits read first, then one listing)."""
    areas = [StreamArea(store, sid) for sid in stream_ids]
    for area in areas:
        area.commits()
    present = set(store.list(f"{STREAMS}/"))
    for area in areas:
        missing = missing_objects(area, present)
        if missing:
            raise missing[0].error(store)


def damaged_streams(store: ObjectStore, stream_ids: Iterable[str], threads: int = 16) -> dict[str, str]:
    """The streams of ``stream_ids`` whose commit records or ``summary.json`` cannot be read, or whose commits
    name a missing object, each with its error as one line (documents read in ``threads`` threads, then one
    listing of the run)."""
    areas = [StreamArea(store, sid) for sid in stream_ids]
    if not areas:
        return {}
    errors: dict[str, str] = {}

    def read(area: StreamArea) -> None:
        try:
            area.commits()
            area.summary()
        except StorageError as exc:
            errors[area.stream_id] = str(exc)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(read, areas))
    present = set(store.list(f"{STREAMS}/"))
    for area in areas:
        if area.stream_id not in errors:
            missing = missing_objects(area, present)
            if missing:
                errors[area.stream_id] = str(missing[0].error(store))
    return errors

