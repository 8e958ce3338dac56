"""A fault-injecting TCP proxy on 127.0.0.1 in front of an S3 endpoint: drops, stalls and 503 SlowDown on the wire.

Each client connection is forwarded to the upstream endpoint; the proxy reads the HTTP requests that go
through it (head, then ``Content-Length`` bytes of body) and numbers them across all connections. ``plan``
says what to do with request number N, given its head: forward it (None), ``drop`` (close the connection without an
answer), ``stall`` (wait ``stall_s``, then forward it), ``slowdown`` (answer ``503 SlowDown`` and close), ``cut``
(forward it, pass on the first ``cut_bytes`` of the answer, then close: a connection lost mid-body) or ``denied``
(answer ``403 AccessDenied`` and close).
Responses are piped back as they come (a client sends its next request only after the last answer).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from netutil import free_port

SLOWDOWN = (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: %d"
            b"\r\n\r\n%s")
SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                 b"<Message>Please reduce your request rate.</Message></Error>")
DENIED = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: %d"
          b"\r\n\r\n%s")
DENIED_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
               b"<Message>Access Denied</Message></Error>")
FAULTS = ("drop", "stall", "slowdown", "cut", "denied")


class FaultProxy:
    """Forward 127.0.0.1:``port`` to ``upstream`` (host, port), applying ``plan`` to every request."""

    def __init__(self, upstream: tuple[str, int], stall_s: float = 1.0, cut_bytes: int = 16384) -> None:
        self.upstream, self.stall_s, self.cut_bytes = upstream, stall_s, cut_bytes
        self.port = free_port()
        self.plan: Callable[[int, bytes], str | None] = lambda n, head: None
        self.requests = 0
        self.faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: set[socket.socket] = set()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def every(self, n: int, *faults: str) -> None:
        """Apply ``faults`` in turn to every ``n``-th request from now on (none: forward everything)."""
        start = self.requests

        def plan(k: int, head: bytes) -> str | None:
            if not faults or (k - start) % n:
                return None
            return faults[((k - start) // n - 1) % len(faults)]

        self.plan = plan

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        for s in list(self._open):
            _close(s)

    # -- forwarding ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        self._open |= {client, upstream}
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        buffer = b""
        try:
            while True:
                head, buffer = _read_head(client, buffer)
                if head is None:
                    return
                with self._lock:
                    self.requests += 1
                    fault = self.plan(self.requests, head)
                    if fault:
                        self.faults[fault] += 1
                if fault == "drop":
                    return
                if fault == "slowdown":
                    client.sendall(SLOWDOWN % (len(SLOWDOWN_BODY), SLOWDOWN_BODY))
                    return
                if fault == "denied":
                    client.sendall(DENIED % (len(DENIED_BODY), DENIED_BODY))
                    return
                if fault == "cut":
                    self._cut(client, head, buffer)
                    return
                if fault == "stall":
                    time.sleep(self.stall_s)
                upstream.sendall(head)
                buffer = _forward_body(client, upstream, _content_length(head), buffer)
        except OSError:
            return
        finally:
            _close(client)
            _close(upstream)
            self._open -= {client, upstream}


    def _cut(self, client: socket.socket, head: bytes, buffer: bytes) -> None:
        """Send one request on a connection of its own and pass on only the first ``cut_bytes`` of its answer."""
        with socket.create_connection(self.upstream) as side:
            side.sendall(head)
            _forward_body(client, side, _content_length(head), buffer)
            passed = 0
            while passed < self.cut_bytes and (chunk := side.recv(65536)):
                chunk = chunk[: self.cut_bytes - passed]
                client.sendall(chunk)
                passed += len(chunk)


def _read_head(sock: socket.socket, buffer: bytes) -> tuple[bytes | None, bytes]:
    """The next request's head (up to the blank line) and what was read after it; None at the end."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    return buffer[:end], buffer[end:]


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _forward_body(client: socket.socket, upstream: socket.socket, length: int, buffer: bytes) -> bytes:
    """Send ``length`` body bytes (``buffer`` first, then from the client) upstream; the bytes left over."""
    while len(buffer) < length:
        upstream.sendall(buffer)
        length -= len(buffer)
        buffer = client.recv(65536)
        if not buffer:
            raise OSError("client closed mid-body")
    upstream.sendall(buffer[:length])
    return buffer[length:]


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
