"""One writer per stream: a lease a writer takes with a create-exclusive put, renews while it writes, and drops.

::

    RUN/streams/stream_id=ID/lease/GENERATION.json   holder, host, pid, taken_unix, renewed_unix, ttl_s

The newest generation is the lease. A writer takes it by creating the next generation with
``ObjectStore.create`` (a local hard link; an S3 PUT with ``If-None-Match: *``), which exactly one of any
number of racing writers can do, and only while the newest is missing or expired: not renewed for its
``ttl_s``, as a writer that died leaves it. The holder renews it every ``heartbeat_s`` from a thread, deletes
the generations before its own, and deletes its own when done. It stops trusting the lease (``check`` raises
``LeaseError``) once its last renewal is ``SAFE`` x ``ttl_s`` old, before anyone else may take it over; a
stream checks before every commit. The hosts' clocks must agree to well within ``ttl_s``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from odist.errors import LeaseError, StorageError
from odist.storage.objectstore import ObjectStore

SAFE = 0.75  # the share of ttl_s after the last renewal during which the holder still trusts its lease
FOLDER = "lease/"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseSettings:
    """``ttl_s``: how long a lease outlives its last renewal; ``heartbeat_s``: how often the holder renews it;
    ``wait_s``: how long a writer waits for a held lease to be dropped or to expire before it refuses."""

    ttl_s: float = 30.0
    heartbeat_s: float = 5.0
    wait_s: float = 0.0


class StreamLease:
    """The lease of the stream under ``prefix`` in ``store``; ``what`` names the stream in messages."""

    def __init__(self, store: ObjectStore, prefix: str, what: str, settings: LeaseSettings | None = None) -> None:
        self.store, self.folder, self.what = store, prefix + FOLDER, what
        self.settings = settings or LeaseSettings()
        self.holder = uuid.uuid4().hex[:12]
        self.generation: int | None = None
        self.lost: str | None = None
        self._renewed = 0.0  # time.monotonic() when the last successful renewal was sent
        self._taken_unix = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking and dropping ---------------------------------------------------------------------

    def acquire(self) -> StreamLease:
        """Take the lease, waiting up to ``settings.wait_s`` for its holder; ``LeaseError`` naming the holder."""
        deadline = time.monotonic() + self.settings.wait_s
        while True:
            holder = self._try_take()
            if holder is None:
                self._thread = threading.Thread(target=self._beat, name=f"lease {self.what}", daemon=True)
                self._thread.start()
                return self
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._refusal(holder)
            time.sleep(min(left, self.settings.heartbeat_s, 1.0))

    def release(self) -> None:
        """Stop renewing and drop the lease (left to expire when the store cannot be reached)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.generation is None:
            return
        try:
            self.store.delete(self._key(self.generation))
        except StorageError as exc:
            log.warning("%s: could not drop its lease (it expires by itself): %s", self.what, exc)
        self.generation = None

    def __enter__(self) -> StreamLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def check(self) -> None:
        """``LeaseError`` unless this writer still holds the lease for sure (call it before every commit)."""
        if self.generation is None:
            raise LeaseError(f"{self.what} is written without its lease", "take the lease first")
        if self.lost is None and time.monotonic() - self._renewed > SAFE * self.settings.ttl_s:
            self.lost = f"not renewed for {time.monotonic() - self._renewed:.0f} s"
        if self.lost is not None:
            raise LeaseError(f"{self.what} lost its writer lease ({self.lost}); this writer stopped",
                             "resume the stream when the store can be reached again")

    # -- the protocol ----------------------------------------------------------------------------

    def _try_take(self) -> dict[str, Any] | None:
        """Take the lease if it is free or expired: None; else its holder's document."""
        for _ in range(3):  # a lost race is read back and, where its winner is already gone, tried again
            newest, document = self._newest()
            if document is not None and not _expired(document):
                if document.get("holder") == self.holder:  # our create went through though its answer was lost
                    self._renewed = time.monotonic() - max(time.time() - float(document["renewed_unix"]), 0.0)
                    return self._took(newest)
                return document
            generation = newest + 1
            sent = time.monotonic()
            self._taken_unix = time.time()
            if self.store.create(self._key(generation), self._document(self._taken_unix)):
                self._renewed = sent
                return self._took(generation)
        newest, document = self._newest()
        return document or {}

    def _took(self, generation: int) -> None:
        self.generation = generation
        for key in self.store.list(self.folder):  # older generations: a crashed writer's, now superseded
            number = _generation_of(key)
            if number is not None and number < generation:
                self.store.delete(key)
        return None

    def _beat(self) -> None:
        """Renew the lease every ``heartbeat_s`` until released, or until it can no longer be trusted.

        Renewals are sent ``heartbeat_s`` apart, counted from when the previous one was sent: a slow renewal
        does not push the next one a whole period further towards the end of the lease."""
        sent = self._renewed
        while not self._stop.wait(max(sent + self.settings.heartbeat_s - time.monotonic(), 0.0)):
            if time.monotonic() - self._renewed > SAFE * self.settings.ttl_s:
                self.lost = self.lost or "its renewals failed"
                return
            sent = time.monotonic()
            try:
                self.store.put(self._key(self.generation), self._document(time.time()))
            except StorageError as exc:
                log.warning("%s: could not renew its lease: %s", self.what, exc)
                continue
            self._renewed = sent

    def _newest(self) -> tuple[int, dict[str, Any] | None]:
        """The newest generation number (0: none) and its document (None: gone, or unreadable: expired)."""
        numbers = [n for n in map(_generation_of, self.store.list(self.folder)) if n is not None]
        if not numbers:
            return 0, None
        newest = max(numbers)
        try:
            document = json.loads(self.store.get(self._key(newest)))
        except StorageError as exc:
            if exc.missing:  # dropped since the listing
                return newest, None
            raise
        except ValueError:
            return newest, None
        return newest, document if isinstance(document, dict) else None

    def _document(self, now: float) -> bytes:
        return json.dumps({"holder": self.holder, "host": socket.gethostname(), "pid": os.getpid(),
                           "taken_unix": self._taken_unix, "renewed_unix": now,
                           "ttl_s": self.settings.ttl_s}).encode()

    def _key(self, generation: int | None) -> str:
        return f"{self.folder}{generation:09d}.json"

    def _refusal(self, holder: dict[str, Any]) -> LeaseError:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        renewed = holder.get("renewed_unix")
        age = "" if not isinstance(renewed, int | float) else f", renewed {max(time.time() - renewed, 0):.0f} s ago"
        ttl = holder.get("ttl_s", self.settings.ttl_s)
        return LeaseError(f"{self.what} is being written by another odist ({who}{age})",
                          f"wait for it to finish, or write another --stream-id or --out; a writer that died "
                          f"holds the stream for at most {ttl:g} s")


def _expired(document: dict[str, Any]) -> bool:
    try:
        return float(document["renewed_unix"]) + float(document["ttl_s"]) < time.time()
    except (KeyError, TypeError, ValueError):
        return True  # not a lease odist wrote: nobody renews it


def _generation_of(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    stem = name.removesuffix(".json")
    return int(stem) if stem != name and stem.isdigit() else None
