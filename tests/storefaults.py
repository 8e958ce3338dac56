"""A store that fails at one chosen step of the commit protocol: the fault-injection harness of the crash tests.

``FaultyStore`` wraps a real store (local folder or S3) and counts the operations of one kind (``put`` of
a segment's records, ``delete`` of the superseded checkpoint, ...). At the chosen occurrence it fails
before the operation, after it, or (``during``, a local ``put``) after leaving a half-written temporary
file, the way a crash would. How it fails:

* ``raise``: the store raises a ``StorageError`` once and then works again (a failed request: the stream
  records its ``failed.json`` and stops);
* ``exit``: the process dies there (``os._exit``, as from a SIGKILL: nothing more is written; run it in a
  child process).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from odist.errors import StorageError
from odist.storage.object_reader import ObjectInfo
from odist.storage.objectstore import LocalStore, ObjectStore

DATA_FOLDERS = ("records", "masks", "labels", "checkpoints", "commits")
EXIT_CODE = 137  # what a SIGKILLed process reports


@dataclass(frozen=True)
class CrashPoint:
    """Fail ``when`` (``before`` | ``during`` | ``after``) the ``occurrence``-th ``action`` on a ``kind`` key."""

    name: str
    action: str  # "put" | "delete"
    kind: str  # a data folder (DATA_FOLDERS) or a document name such as "summary.json"
    when: str
    occurrence: int = 1


def kind_of(key: str) -> str:
    """The data folder (``DATA_FOLDERS``) a key is in, else the key's file name."""
    parts = key.split("/")
    return parts[-2] if len(parts) > 1 and parts[-2] in DATA_FOLDERS else parts[-1]


def commit_protocol_points(segment: int = 2) -> list[CrashPoint]:
    """A crash between every two steps of committing the ``segment``-th segment (one with a previous checkpoint
    to drop) and of finishing the stream, and during ``summary.json``.

    After one step and before the next the store holds the same objects, so each point covers both: "after
    the records object" is the point that fails before the masks object.
    """
    steps = [("put", "records", "records object"), ("put", "masks", "masks object"),
             ("put", "checkpoints", "checkpoint object"), ("put", "commits", "commit record")]
    points = [CrashPoint("before records object", "put", "records", "before", segment)]
    for (_, _, done), (action, kind, label) in itertools.pairwise(steps):
        points.append(CrashPoint(f"after {done}, before {label}", action, kind, "before", segment))
    # The keyframes' teacher labels are a data object of a segment that learned from a keyframe: the first one.
    points += [CrashPoint("after masks object, before labels object (first segment)", "put", "labels", "before"),
               CrashPoint("after labels object, before checkpoint object (first segment)", "put", "checkpoints",
                          "before")]
    points += [CrashPoint("after commit record, before dropping the previous checkpoint", "delete", "checkpoints",
                          "before", segment - 1),
               CrashPoint("after dropping the previous checkpoint", "delete", "checkpoints", "after", segment - 1)]
    points += [CrashPoint(f"{when} summary.json", "put", "summary.json", when) for when in ("before", "during",
                                                                                           "after")]
    return points


class FaultyStore(ObjectStore):
    """``inner`` with one injected fault at ``point`` (``mode``: ``raise`` or ``exit``)."""

    def __init__(self, inner: ObjectStore, point: CrashPoint, mode: str = "raise") -> None:
        if mode not in ("raise", "exit"):
            raise ValueError(f"unknown fault mode {mode!r}")
        self.inner, self.point, self.mode = inner, point, mode
        self.uri = inner.uri
        self.seen = 0
        self.fired = False

    # -- the injection ---------------------------------------------------------------------------

    def _matches(self, action: str, key: str) -> bool:
        if self.fired or action != self.point.action or kind_of(key) != self.point.kind:
            return False
        self.seen += 1
        return self.seen == self.point.occurrence

    def _fire(self) -> None:
        self.fired = True
        if self.mode == "exit":
            os._exit(EXIT_CODE)
        raise StorageError(f"injected fault {self.point.name}", "resume the stream")

    def _half_written(self, key: str, data: bytes) -> None:
        """What a local ``put`` interrupted mid-write leaves: a hidden temporary file beside the key."""
        if isinstance(self.inner, LocalStore):
            path = self.inner.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, _ = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data[: len(data) // 2])

    # -- the store -------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        if not self._matches("put", key):
            return self.inner.put(key, data)
        if self.point.when == "during":
            self._half_written(key, data)
        if self.point.when == "after":
            self.inner.put(key, data)
        self._fire()
        return None

    def delete(self, key: str) -> None:
        if not self._matches("delete", key):
            return self.inner.delete(key)
        if self.point.when == "after":
            self.inner.delete(key)
        self._fire()
        return None

    def create(self, key: str, data: bytes) -> bool:
        return self.inner.create(key, data)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def open_read(self, key: str, info: ObjectInfo | None = None) -> BinaryIO:
        return self.inner.open_read(key, info)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def has_any(self, prefix: str = "") -> bool:
        return self.inner.has_any(prefix)

    def sweep_temporaries(self, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
        return self.inner.sweep_temporaries(prefix, skip)

    def arrow_filesystem(self) -> tuple[Any, str]:
        return self.inner.arrow_filesystem()

    def url(self, key: str) -> str:
        return self.inner.url(key)
