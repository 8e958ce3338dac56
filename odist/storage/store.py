"""``ObjectStore``: the interface every backend implements (a flat namespace of byte objects under one root URI),
and ``put_many``'s process-wide threads."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, BinaryIO

from odist.errors import StorageError
from odist.storage.object_reader import ObjectInfo


class ObjectStore(ABC):
    """A flat namespace of byte objects under one root URI."""

    uri: str
    retries = 0  # requests this store repeated after a transient error or throttling (S3: its client's too)

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (readers see the old object or the whole new one)."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Write ``data`` at ``key`` only if no object is there; False if one is. Of writers racing to create
        one key, exactly one gets True (a local hard link; an S3 PUT with ``If-None-Match: *``)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes at ``key``; ``StorageError`` naming the URI when it is missing."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """The size and version of the object at ``key``; ``StorageError`` (``missing``) naming it when absent."""

    @abstractmethod
    def open_read(self, key: str, info: ObjectInfo | None = None) -> BinaryIO:
        """The object at ``key`` as a seekable binary file, read as it is consumed (never whole into memory).
        With ``info``, a ``StorageError`` when the object is no longer that version."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys that start with ``prefix`` (recursively)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    @abstractmethod
    def arrow_filesystem(self) -> tuple[Any, str]:
        """A ``pyarrow.fs`` filesystem and the root path within it, for datasets over this store."""

    def url(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/{key}"

    def missing(self, key: str) -> StorageError:
        """The one error every store raises for an absent object: it names the object's URI and is ``missing``."""
        return StorageError(f"{self.url(key)} does not exist", missing=True)

    def get_or_none(self, key: str) -> bytes | None:
        return self.get(key) if self.exists(key) else None

    def sweep_temporaries(self, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
        """Delete what writes a crash interrupted left under the folder ``prefix``, except under the folders
        ``skip`` (keys); their keys. An object store's PUT leaves nothing behind, so by default there is nothing
        to sweep."""
        return []

    def has_any(self, prefix: str = "") -> bool:
        """Whether any object's key starts with ``prefix``."""
        return bool(self.list(prefix))

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """``put`` every ``(key, data)`` pair, at the same time: each is atomic on its own, none is ordered
        before another (a local store's syncs, an S3 store's round trips overlap). The first item's error
        (in the given order) is raised once every put has ended."""
        if len(items) < 2:
            for key, data in items:
                self.put(key, data)
            return
        futures = [_put_pool().submit(self.put, key, data) for key, data in items]
        wait(futures)
        for future in futures:
            future.result()


PUT_THREADS = 8  # the most puts ``put_many`` runs at once, over every store of the process
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_put_pool() -> None:
    """In a forked child: the parent's threads are not there, so the next ``put_many`` starts its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_put_pool)


def _put_pool() -> ThreadPoolExecutor:
    """The process's threads for ``put_many``, started on first use (a stream per call would pay their start)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=PUT_THREADS, thread_name_prefix="odist-put")
        return _pool
