"""A read-only, seekable file over one S3 object, streamed in ranged GETs as the reader advances.

A decoder reads a video object through ``S3ObjectReader`` as it would read a local file, without the whole
object ever being in memory or on local disk: each GET covers at most ``block`` bytes from the reader's
position and is consumed as it arrives. A connection that drops or stalls mid-body is re-opened from the
byte it stopped at (each re-open counts in the store's ``retries``). Every GET carries ``If-Match`` with
the ETag seen when the reader was opened, so an object replaced while it is read fails in one line
instead of mixing two objects' bytes.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odist.errors import StorageError

if TYPE_CHECKING:
    from odist.storage.s3_store import S3Store

BLOCK_BYTES = 8 << 20  # the most one GET asks for: bounds what a seek wastes, not what is held in memory
SKIP_BYTES = 256 << 10  # a forward seek this short reads on through the open body instead of a new GET
READ_BYTES = 256 << 10  # the least one read takes from a body: a decoder's small reads are served from memory
BEHIND_BYTES = 2 * READ_BYTES  # the last bytes read from a body, kept for reads that come back after a seek


@dataclass(frozen=True)
class ObjectInfo:
    """What identifies one version of an object: its size and a version tag (S3: the ETag; local: mtime)."""

    size: int
    version: str

    def describe(self) -> str:
        return f"{self.size} bytes, {self.version}"


def local_info(path: Path) -> ObjectInfo:
    """A local file's size and modification time."""
    found = path.stat()
    return ObjectInfo(found.st_size, f"modified {found.st_mtime_ns}")


@dataclass
class _Body:
    """One GET's streaming body: the next byte it yields (``pos``), where its range ends, and the last bytes
    read from it (up to ``BEHIND_BYTES``, ending at ``pos``)."""

    stream: Any
    pos: int
    end: int
    recent: bytearray = field(default_factory=bytearray)

    def recalled(self, position: int, size: int) -> bytes:
        """Up to ``size`` of the recent bytes from ``position`` on; b"" when they do not hold it."""
        offset = position - (self.pos - len(self.recent))
        return bytes(self.recent[offset:offset + size]) if 0 <= offset < len(self.recent) else b""

    def took(self, data: bytes) -> None:
        self.pos += len(data)
        self.recent += data
        if len(self.recent) > BEHIND_BYTES:
            del self.recent[:len(self.recent) - BEHIND_BYTES]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection is closed either way
            self.stream.close()


class S3ObjectReader(io.RawIOBase):
    """The object at ``key`` of ``store`` as a seekable binary file (``info``: the version to read).

    Besides the body being read, it keeps one body parked where a seek left it (a container's index is often
    at the end of the file: the decoder reads the start, the index, then goes on from the start) and the last
    ``BEHIND_BYTES`` read, so that such a pattern costs no GET more than it must.
    """

    def __init__(self, store: S3Store, key: str, info: ObjectInfo | None = None, *, block: int | None = None) -> None:
        super().__init__()
        self.store, self.key, self.block = store, key, block or BLOCK_BYTES
        self.bytes_fetched = 0  # body bytes received, over every GET
        self.requests = 0  # GETs sent, re-opens after a dropped connection included
        self._pos = 0
        self._body: _Body | None = None  # the body reads come from
        self._parked: _Body | None = None  # a body a seek left, kept for a read that comes back to it
        self.info = info or self._first_get()

    def _first_get(self) -> ObjectInfo:
        """The object's first block, opened at once: its answer tells the size and ETag (no HEAD needed)."""
        response = self.store.get_range(self.key, 0, self.block)
        self.requests += 1
        size = int(str(response.get("ContentRange", "")).rpartition("/")[2] or response["ContentLength"])
        self._body = _Body(response["Body"], 0, min(size, self.block))
        return ObjectInfo(size, f"ETag {response['ETag']}")

    # -- io.RawIOBase ---------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.info.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes from the position (all that is left when ``size`` < 0), fewer at the end; b"" there."""
        left = self.info.size - self._pos
        if left <= 0 or size == 0:
            return b""
        size = left if size < 0 else min(size, left)
        parts = []
        while size > 0:
            parts.append(self._read_some(size))
            size -= len(parts[-1])
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        for body in (self._body, self._parked):
            if body is not None:
                body.close()
        self._body = self._parked = None
        super().close()

    # -- fetching --------------------------------------------------------------------------------

    def _read_some(self, size: int) -> bytes:
        """At least one and at most ``size`` bytes from the position: from the bytes read last, else from a
        body (re-opened from the byte it stopped at when its connection drops)."""
        for body in (self._body, self._parked):
            data = b"" if body is None else body.recalled(self._pos, size)
            if data:
                self._pos += len(data)
                return data
        for attempt in range(self.store.attempts):
            body = self._body_at_position()
            try:
                data = body.stream.read(min(max(size, READ_BYTES), body.end - body.pos))
            except Exception as exc:  # sorted below: the network's faults are retried
                if not _transient(exc) or attempt + 1 == self.store.attempts:
                    self._drop(body)
                    raise StorageError(f"cannot read {self.store.url(self.key)} at byte {self._pos}: {exc}",
                                       "check the S3 endpoint (AWS_ENDPOINT_URL) and the network") from None
                data = b""
            if data:
                self._took(body, data)
                data = data[:size]  # the rest is recalled by the next reads
                self._pos += len(data)
                return data
            self._drop(body)  # cut short (a dropped connection): ask again from the byte it stopped at
            self.store.retries += 1
            time.sleep(min(0.2 * 2**attempt, 5.0))
        raise StorageError(f"cannot read {self.store.url(self.key)} at byte {self._pos}: the connection kept "
                           f"dropping ({self.store.attempts} tries)",
                           "check the S3 endpoint (AWS_ENDPOINT_URL) and the network")

    def _body_at_position(self) -> _Body:
        """The open body whose next byte is the reader's position: the current one (read on over a short
        gap), the parked one, or a new GET (the current one parked)."""
        body = self._body
        if self._parked is not None and self._parked.pos == self._pos and (body is None or body.pos != self._pos):
            self._body, self._parked = self._parked, body
            return self._body
        if body is not None and body.pos < self._pos < body.end and self._pos - body.pos <= SKIP_BYTES:
            with contextlib.suppress(Exception):  # a failed skip is just a new GET below
                while body.pos < self._pos:
                    skipped = body.stream.read(self._pos - body.pos)
                    if not skipped:
                        break
                    self._took(body, skipped)
        if body is not None and body.pos == self._pos and body.pos < body.end:
            return body
        if body is not None and body.pos < body.end:
            if self._parked is not None:
                self._parked.close()
            self._parked = body
        elif body is not None:
            body.close()
        end = min(self.info.size, self._pos + self.block)
        response = self.store.get_range(self.key, self._pos, end, if_match=self.info.version)
        self.requests += 1
        self._body = _Body(response["Body"], self._pos, end)
        return self._body

    def _took(self, body: _Body, data: bytes) -> None:
        body.took(data)
        self.bytes_fetched += len(data)

    def _drop(self, body: _Body) -> None:
        body.close()
        if self._body is body:
            self._body = None


def _transient(exc: BaseException) -> bool:
    """Whether ``exc``, raised while a body streamed, is the network's (worth a new GET from that byte)."""
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ResponseStreamingError", "ReadTimeoutError", "ProtocolError", "IncompleteRead",
                         "IncompleteReadError", "BotoCoreError", "HTTPClientError", "HTTPError"})
