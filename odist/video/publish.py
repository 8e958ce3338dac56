"""Publish frames as a live MPEG-TS stream at real-time pace: a stand-in camera for demos and tests.

``udp://HOST:PORT`` sends datagrams; ``tcp://HOST:PORT`` serves one client at a time (FFmpeg's listen
mode) and waits for the next one when it leaves; ``http://HOST:PORT/`` serves every client that
connects its own real-time stream (a small threaded HTTP server).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import av
import numpy as np

SERVING_SCHEMES = ("tcp://",)


def publish(frames: Callable[[], Iterable[np.ndarray]], url: str, fps: float, *, codec: str = "libx264",
            stop: Callable[[], bool] = lambda: False, loop: bool = True) -> int:
    """Send the RGB frames of ``frames()`` to ``url`` at ``fps``; returns the frames sent.

    ``frames`` is called again for each new client (and each loop when ``loop``); returns when ``stop()``
    is true or, without ``loop``, when the frames run out.
    """
    if url.startswith("http://"):
        return _serve_http(frames, url, fps, codec, stop, loop)
    sent = 0
    while not stop():
        try:
            sent += _send(frames(), url, fps, codec, stop, loop)
        except (OSError, av.error.FFmpegError):
            if url.startswith(SERVING_SCHEMES):
                continue  # the client left: serve the next one
            raise
        if not url.startswith(SERVING_SCHEMES):
            break
    return sent


def _send(images: Iterable[np.ndarray], url: str, fps: float, codec: str, stop: Callable[[], bool],
          loop: bool) -> int:
    if url.startswith("tcp://") and "listen" not in url:
        url += ("&" if "?" in url else "?") + "listen=1"
    if url.startswith("udp://") and "pkt_size" not in url:
        url += ("&" if "?" in url else "?") + "pkt_size=1316"
    return _encode(images, av.open(url, mode="w", format="mpegts"), fps, codec, stop, loop)


def _encode(images: Iterable[np.ndarray], container: av.container.OutputContainer, fps: float, codec: str,
            stop: Callable[[], bool], loop: bool) -> int:
    sent = 0
    try:
        stream = None
        started = time.monotonic()
        for image in _repeat(images, loop):
            if stop():
                break
            if stream is None:
                stream = _video_stream(container, codec, fps, image.shape[1], image.shape[0])
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = sent
            container.mux(stream.encode(frame))
            sent += 1
            delay = started + sent / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if stream is not None:
            container.mux(stream.encode(None))
    finally:
        container.close()
    return sent


def _serve_http(frames: Callable[[], Iterable[np.ndarray]], url: str, fps: float, codec: str,
                stop: Callable[[], bool], loop: bool) -> int:
    """Serve ``frames`` to every HTTP client until ``stop()``; returns the frames sent in all."""
    parsed = urlparse(url)
    totals: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            with contextlib.suppress(OSError, av.error.FFmpegError):  # the client left
                totals.append(_encode(frames(), av.open(self.wfile, mode="w", format="mpegts"), fps, codec,
                                      stop, loop))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((parsed.hostname or "127.0.0.1", parsed.port or 80), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        while not stop():
            time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    return sum(totals)


def _repeat(images: Iterable[np.ndarray], loop: bool) -> Iterator[np.ndarray]:
    cached = []
    for image in images:
        cached.append(image)
        yield image
    while loop and cached:
        yield from cached


def _video_stream(container: av.container.OutputContainer, codec: str, fps: float, width: int,
                  height: int) -> av.VideoStream:
    stream = container.add_stream(codec, rate=round(fps))
    stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
    if codec == "libx264":
        # A keyframe every second so a receiver that (re)joins decodes within a second; no B-frames or lookahead.
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(max(1, round(fps)))}
    return stream
