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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odist.errors import StorageError

if TYPE_CHECKING:
    from odist.storage.objectstore import S3Store

BLOCK_BYTES = 8 << 20  # the most one GET asks for: bounds what a seek wastes, not what is held in memory
SKIP_BYTES = 256 << 10  # a forward seek this short reads on through the open body instead of a new GET


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


class S3ObjectReader(io.RawIOBase):
    """The object at ``key`` of ``store`` as a seekable binary file (``info``: the version to read)."""

    def __init__(self, store: S3Store, key: str, info: ObjectInfo, *, block: int | None = None) -> None:
        super().__init__()
        self.store, self.key, self.info, self.block = store, key, info, block or BLOCK_BYTES
        self.bytes_fetched = 0  # body bytes received, over every GET
        self.requests = 0  # GETs sent, re-opens after a dropped connection included
        self._pos = 0
        self._body: Any = None  # the open GET's streaming body
        self._body_pos = self._body_end = 0  # the next byte it yields, and where its range ends

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
        """Up to ``size`` bytes from the position (all that is left when ``size`` < 0); b"" at the end."""
        left = self.info.size - self._pos
        if left <= 0 or size == 0:
            return b""
        return self._read_fully(left if size < 0 else min(size, left))

    def close(self) -> None:
        self._drop_body()
        super().close()

    # -- fetching --------------------------------------------------------------------------------

    def _read_fully(self, size: int) -> bytes:
        """Exactly ``size`` bytes (the caller keeps within the object), over as many GETs as that takes."""
        part = self._read_some(size)
        if len(part) == size:
            return part
        parts = [part]
        size -= len(part)
        while size > 0:
            parts.append(self._read_some(size))
            size -= len(parts[-1])
        return b"".join(parts)

    def _read_some(self, size: int) -> bytes:
        """At least one and at most ``size`` bytes from the position, re-opening a dropped body."""
        for attempt in range(self.store.attempts):
            self._position_body()
            try:
                data = self._body.read(min(size, self._body_end - self._body_pos))
            except Exception as exc:  # sorted below: the network's faults are retried
                if not _transient(exc) or attempt + 1 == self.store.attempts:
                    self._drop_body()
                    raise StorageError(f"cannot read {self.store.url(self.key)} at byte {self._pos}: {exc}",
                                       "check the S3 endpoint (AWS_ENDPOINT_URL) and the network") from None
                data = b""
            if data:
                self._body_pos += len(data)
                self._pos += len(data)
                self.bytes_fetched += len(data)
                return data
            self._drop_body()  # cut short (a dropped connection): ask again from the byte it stopped at
            self.store.retries += 1
            time.sleep(min(0.2 * 2**attempt, 5.0))
        raise StorageError(f"cannot read {self.store.url(self.key)} at byte {self._pos}: the connection kept "
                           f"dropping ({self.store.attempts} tries)",
                           "check the S3 endpoint (AWS_ENDPOINT_URL) and the network")

    def _position_body(self) -> None:
        """Have an open body whose next byte is the reader's position."""
        ahead = self._pos - self._body_pos
        if self._body is not None and 0 < ahead <= SKIP_BYTES and self._pos < self._body_end:
            try:
                skipped = self._body.read(ahead)
            except Exception:  # a failed skip is just a new GET
                skipped = b""
            self.bytes_fetched += len(skipped)
            self._body_pos += len(skipped)
        if self._body is None or self._body_pos != self._pos or self._body_pos >= self._body_end:
            self._open_body()

    def _open_body(self) -> None:
        self._drop_body()
        end = min(self.info.size, self._pos + self.block)
        response = self.store.get_range(self.key, self._pos, end, if_match=self.info.version)
        self.requests += 1
        self._body, self._body_pos, self._body_end = response["Body"], self._pos, end

    def _drop_body(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):  # a broken connection is closed either way
                self._body.close()
            self._body = None


def _transient(exc: BaseException) -> bool:
    """Whether ``exc``, raised while a body streamed, is the network's (worth a new GET from that byte)."""
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ResponseStreamingError", "ReadTimeoutError", "ProtocolError", "IncompleteRead",
                         "IncompleteReadError", "BotoCoreError", "HTTPClientError", "HTTPError"})
