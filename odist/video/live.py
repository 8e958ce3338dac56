"""Live video sources: any URL FFmpeg opens (rtsp, http(s), udp, tcp, devices) read in real time.

A capture thread decodes the stream as it arrives and keeps only the newest frame for the consumer:
when the consumer is slower than the camera, older frames are replaced and counted as drops, so
nothing queues without bound and latency stays at one frame. Frames carry the wall-clock time they
were decoded (``Frame.timestamp``, unix seconds). A dropped connection, a read timeout or the end of
the stream reconnects with exponential backoff; frame indices keep counting across reconnects.
A stream FFmpeg cannot decode (or one that never connects within ``give_up_after_s``) is fatal:
``read`` raises its ``InputError``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import av
import numpy as np

from odist.errors import InputError
from odist.redact import redact, remember_url
from odist.video.frame import Frame

log = logging.getLogger(__name__)
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://", "device:")


def is_live_url(uri: str) -> bool:
    """Whether ``uri`` names a live stream rather than a file."""
    return uri.startswith(LIVE_SCHEMES)


@dataclass(frozen=True)
class LiveSettings:
    """How to read a live URL: output size, target fps, timeouts and reconnect backoff."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None  # frames per second handed on at most (None: every decoded frame)
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    give_up_after_s: float | None = None  # None: keep reconnecting for ever (cameras come back)
    rtsp_transport: str = "tcp"  # how RTSP carries the media: "tcp" (interleaved, through NAT) or "udp"

    def __post_init__(self) -> None:
        if self.rtsp_transport not in ("tcp", "udp"):
            raise InputError(f"RTSP transport {self.rtsp_transport!r} is unknown", "use tcp or udp")


@dataclass
class LiveStats:
    """What the capture thread saw so far."""

    decoded: int = 0  # frames decoded from the stream
    delivered: int = 0  # frames handed to the consumer
    dropped: int = 0  # frames replaced before the consumer took them (it fell behind)
    sampled_out: int = 0  # frames skipped to hold the target fps (not drops)
    reconnects: int = 0
    connected: bool = False
    last_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class LiveSource:
    """The newest frame of a live URL, decoded by a background thread (``start`` / ``read`` / ``stop``)."""

    def __init__(self, url: str, settings: LiveSettings | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        remember_url(url)
        self.url = url  # opened as it is; shown and logged only as ``shown_url``, its secrets masked
        self.shown_url = redact(url)
        self.settings = settings or LiveSettings()
        self.clock = clock
        self.stats = LiveStats()
        self.fatal: InputError | None = None
        self.width: int | None = self.settings.width
        self.height: int | None = self.settings.height
        self._next_index = 0
        self._latest: Frame | None = None
        self._ready = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_due = 0.0

    @property
    def name(self) -> str:
        return self.shown_url

    def start(self, first_index: int = 0) -> LiveSource:
        """Start capturing; the first frame gets index ``first_index``."""
        if self._thread is not None:
            raise RuntimeError("live source already started")
        self._next_index = first_index
        self._thread = threading.Thread(target=self._capture, name=f"live-capture {self.shown_url}", daemon=True)
        self._thread.start()
        return self

    def read(self, timeout: float) -> Frame | None:
        """The newest frame not read yet, waiting up to ``timeout`` s (None if none came).

        Raises the source's ``InputError`` once it has given up.
        """
        with self._ready:
            if self._latest is None and self.fatal is None:
                self._ready.wait(timeout)
            frame, self._latest = self._latest, None
            if frame is not None:
                self.stats.delivered += 1
                return frame
        if self.fatal is not None:
            raise self.fatal
        return None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing (the thread ends after its current read times out at the latest)."""
        self._stopping.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> LiveSource:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the capture thread -----------------------------------------------------------------------

    def _capture(self) -> None:
        backoff = self.settings.backoff_initial_s
        unreachable_since: float | None = None
        attempts = 0
        while not self._stopping.is_set():
            try:
                attempts += 1
                got_frames = self._read_until_closed()
            except InputError as exc:  # the stream cannot be decoded: retrying will not help
                self._give_up(exc)
                return
            except av.error.HTTPUnauthorizedError:  # wrong user or password: retrying will not help either
                self._give_up(InputError(f"live stream {self.shown_url} refused the credentials (401 Unauthorized)",
                                         "check the camera's user and password (or its credentials: entry)"))
                return
            except Exception as exc:  # refused, reset, timed out, garbled: reconnect
                got_frames = False
                self._note_error(self._describe(exc))
            else:
                if not self._stopping.is_set():
                    self._note_error("the stream ended")
            self.stats.connected = False
            if self._stopping.is_set():
                return
            if got_frames:
                backoff, unreachable_since = self.settings.backoff_initial_s, None
            unreachable_since = unreachable_since or self.clock()
            limit = self.settings.give_up_after_s
            if limit is not None and self.clock() - unreachable_since >= limit:
                self._give_up(InputError(
                    f"live stream {self.shown_url} gave no frame for {limit:g} s ({attempts} tries), last error: "
                    f"{self.stats.last_error}", "check that the camera is up and the URL, port and protocol"))
                return
            self.stats.reconnects += 1
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.settings.backoff_max_s)

    def _read_until_closed(self) -> bool:
        """Decode frames until the stream ends or fails; True when at least one frame came."""
        s = self.settings
        target, device_format = _device(self.url)
        container = av.open(target, format=device_format, options=_ffmpeg_options(self.url, s.rtsp_transport),
                            timeout=(s.open_timeout_s, s.read_timeout_s))
        try:
            if not container.streams.video:
                raise InputError(f"live stream {self.shown_url} has no video track",
                                 "point the camera URL at a video feed")
            stream = container.streams.video[0]
            if stream.codec_context is None or stream.codec_context.name is None:
                raise InputError(f"live stream {self.shown_url}: FFmpeg has no decoder for its video codec",
                                 "configure the camera for H.264/H.265/MJPEG, or install an FFmpeg with the codec")
            got = False
            for raw in container.decode(stream):
                if self._stopping.is_set():
                    break
                if not got:
                    got = True
                    self.stats.connected = True
                self._offer(raw)
            return got
        finally:
            container.close()

    def _offer(self, raw: av.VideoFrame) -> None:
        now = self.clock()
        self.stats.decoded += 1
        fps = self.settings.fps
        if fps:
            if now < self._next_due:
                self.stats.sampled_out += 1
                return
            self._next_due = max(self._next_due + 1.0 / fps, now - 1.0 / fps)
        frame = Frame(index=self._next_index, image=self._to_rgb(raw), timestamp=now)
        self._next_index += 1
        with self._ready:
            if self._latest is not None:
                self.stats.dropped += 1
            self._latest = frame
            self._ready.notify()

    def _to_rgb(self, raw: av.VideoFrame) -> np.ndarray:
        width, height = self.settings.width, self.settings.height
        if width and not height:
            height = max(2, round(raw.height * width / raw.width / 2) * 2)
        elif height and not width:
            width = max(2, round(raw.width * height / raw.height / 2) * 2)
        image = raw.to_ndarray(format="rgb24", width=width or raw.width, height=height or raw.height)
        self.width, self.height = image.shape[1], image.shape[0]
        return image

    def _describe(self, exc: Exception) -> str:
        """What went wrong with the stream, for people (FFmpeg's interrupt on a timeout is no shutdown)."""
        if isinstance(exc, av.error.ExitError) and not self._stopping.is_set():
            waited = self.settings.read_timeout_s if self.stats.connected else self.settings.open_timeout_s
            return f"no data from {self.shown_url} for {waited:g} s"
        if isinstance(exc, av.error.HTTPNotFoundError):
            return f"{self.shown_url} names no stream (404 Not Found): check the URL's path"
        if isinstance(exc, av.error.FFmpegError) and exc.strerror:  # without its errno and the URL it was given
            return str(exc.strerror)
        return f"{type(exc).__name__}: {exc}"

    def _note_error(self, message: str) -> None:
        message = redact(message)
        if message != self.stats.last_error:
            log.warning("live stream %s: %s; reconnecting", self.shown_url, message)
        self.stats.last_error = message

    def _give_up(self, error: InputError) -> None:
        with self._ready:
            self.fatal = error
            self.stats.last_error = str(error)
            self.stats.connected = False
            self._ready.notify_all()


def _device(url: str) -> tuple[str, str | None]:
    """``device:FORMAT:PATH`` (e.g. ``device:v4l2:/dev/video0``) -> (PATH, FORMAT); other URLs as they are."""
    if not url.startswith("device:"):
        return url, None
    device_format, sep, path = url[len("device:"):].partition(":")
    if not sep or not device_format or not path:
        raise InputError(f"bad device URL {url!r}", "write device:FORMAT:PATH, e.g. device:v4l2:/dev/video0")
    return path, device_format


def _ffmpeg_options(url: str, rtsp_transport: str = "tcp") -> dict[str, str]:
    """Low-latency demuxer options, per protocol."""
    options = {"fflags": "nobuffer", "flags": "low_delay"}
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = rtsp_transport
    if url.startswith("udp://"):
        options |= {"overrun_nonfatal": "1", "fifo_size": "50000"}
    return options
