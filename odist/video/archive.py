"""Frames decoded from a video file with PyAV: any container and codec FFmpeg reads."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import av
import av.error
import numpy as np

from odist.errors import InputError
from odist.redact import redact, split_userinfo
from odist.video.frame import Frame
from odist.video.video_file import locate_video

_REMOTE_TIMEOUT_S = 60.0
_TICK_SLACK = 1e-4  # seconds: timestamps this close to a sampling tick count as on it
# FFmpeg renders plain text as terminal-art video (the "tty" demuxer); a text file is never a camera clip.
_TEXT_FORMATS = ("tty",)
_FIX_FORMAT = "pass a video file FFmpeg can decode (e.g. .mp4, .mkv, .avi, .mov)"


class ArchiveSource:
    """Decode ``path`` in order, optionally sampled down to ``fps`` and resized.

    ``fps`` keeps a frame whenever its timestamp reaches the next sampling tick (ticks start at the
    first frame and are ``1 / fps`` apart); it never adds frames, so a rate at or above the file's
    own keeps every frame. With only one of ``width``/``height`` the other follows the aspect ratio,
    rounded to an even number. ``Frame.index`` counts the frames yielded, from 0; ``Frame.timestamp``
    is the presentation time in seconds from the start of the stream.
    """

    def __init__(self, path: str | Path, *, fps: float | None = None, width: int | None = None,
                 height: int | None = None, max_frames: int | None = None) -> None:
        self.file = locate_video(path)
        self._targets: dict[int, str | BinaryIO] = {}  # what each open container reads from
        self.path: Path | str = self.file.shown  # what messages show
        self.name = self.file.name
        _check_options(fps, width, height, max_frames)
        self.max_frames = max_frames
        container = self._open()
        try:
            stream = container.streams.video[0]
            self.source_fps = _stream_rate(stream)
            native = (stream.codec_context.width, stream.codec_context.height)
            self.source_size: tuple[int, int] | None = native if min(native) > 0 else None
            count = _stream_count(stream, container, self.source_fps)
        except BaseException:
            self._close(container)
            raise
        # The probed container holds the packets it read: the first pass decodes from it rather than opening
        # the file again (for an object in S3, a HEAD and GETs fewer).
        self._probed: av.container.InputContainer | None = container
        self._period = None if fps is None or (self.source_fps and fps >= self.source_fps) else 1.0 / fps
        self.fps: float | None = fps if self._period else self.source_fps
        self._requested = (width, height)
        self.width, self.height = (0, 0)
        if self.source_size:
            self.width, self.height = _output_size(self.source_size, width, height)
        self.num_frames = _estimate(count, self.source_fps, self.fps, max_frames)

    def __repr__(self) -> str:
        return f"ArchiveSource({str(self.path)!r}, fps={self.fps}, {self.width}x{self.height})"

    def __iter__(self) -> Iterator[Frame]:
        container, self._probed = self._probed or self._open(), None
        try:
            yield from self._frames(container)
        finally:
            self._close(container)

    def close(self) -> None:
        """Close the probed container if no pass has taken it (a pass closes what it opens)."""
        container, self._probed = getattr(self, "_probed", None), None
        if container is not None:
            self._close(container)

    def __del__(self) -> None:
        self.close()

    def identity(self) -> dict[str, object] | None:
        """The file's size and version (S3 ETag or modification time) when it was opened, for ``stream.json``."""
        return self.file.identity()

    def read_stats(self) -> dict[str, int] | None:
        """What reading an object in S3 cost so far (bytes, GETs, retries); None for local files and URLs."""
        return self.file.read_stats()

    def _open(self) -> av.container.InputContainer:
        """The open container, checked to hold a video stream; every failure names the file. A re-open of an
        object that changed since it was first opened is refused."""
        self.file.check()
        target = self.file.target()
        try:
            container = _open_container(target, self.path)
        except BaseException:
            self.file.release(target)
            raise
        self._targets[id(container)] = target
        return container

    def _close(self, container: av.container.InputContainer) -> None:
        container.close()
        self.file.release(self._targets.pop(id(container)))

    def _frames(self, container: av.container.InputContainer) -> Iterator[Frame]:
        stream = container.streams.video[0]
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        next_tick: float | None = None
        index = decoded = 0
        for raw in _decode(container, stream, self.path):
            seconds = _seconds(raw, decoded, self.source_fps, origin)
            decoded += 1
            if self._period is not None and seconds is not None:
                if next_tick is not None and seconds < next_tick - _TICK_SLACK:
                    continue
                next_tick = _advance(next_tick, seconds, self._period)
            yield Frame(index, self._to_rgb(raw), timestamp=seconds)
            index += 1
            if index == self.max_frames:
                return
        if index == 0:
            raise InputError(f"{self.path} has no decodable video frames", "pass a video that holds at least one frame")

    def _to_rgb(self, raw: av.VideoFrame) -> np.ndarray:
        if not self.width:
            self.width, self.height = _output_size((raw.width, raw.height), *self._requested)
        if (raw.width, raw.height) == (self.width, self.height):
            return raw.to_ndarray(format="rgb24")
        shrink = self.width * self.height < raw.width * raw.height
        scaled = raw.reformat(width=self.width, height=self.height, format="rgb24",
                              interpolation="AREA" if shrink else "BILINEAR")
        return scaled.to_ndarray()


def _fix_for(target: str | BinaryIO) -> str:
    """How to fix an unreadable video; a URL whose password holds an unencoded ``/``, ``?`` or ``#`` is cut short
    there by FFmpeg, so the fix is to percent-encode it."""
    split = split_userinfo(target) if isinstance(target, str) else None
    if split is not None and any(c in split[2] for c in "/?#"):
        return "percent-encode the URL's password (/ as %2F, ? as %3F, # as %23)"
    return _FIX_FORMAT


def _open_container(target: str | BinaryIO, shown: str | Path) -> av.container.InputContainer:
    try:
        container = av.open(target, mode="r", timeout=_REMOTE_TIMEOUT_S)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{shown} is not a readable video ({redact(_reason(exc))})", _fix_for(target)) from None
    if container.format.name in _TEXT_FORMATS:
        container.close()
        raise InputError(f"{shown} is not a readable video (it is a text file)", _FIX_FORMAT)
    if not container.streams.video:
        container.close()
        raise InputError(f"{shown} has no video stream", _FIX_FORMAT)
    container.streams.video[0].thread_type = "AUTO"
    return container


def _decode(container: av.container.InputContainer, stream: av.VideoStream,
            path: str | Path) -> Iterator[av.VideoFrame]:
    """The stream's frames in presentation order; a decoder failure becomes an InputError naming the frame."""
    count = 0
    frames = container.decode(stream)
    while True:
        try:
            raw = next(frames)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{path}: decoding failed at frame {count} ({_reason(exc)})",
                             "the file is damaged; re-encode it or cut it before that frame") from None
        count += 1
        yield raw


def _advance(tick: float | None, seconds: float, period: float) -> float:
    """The first sampling tick after ``seconds``; ticks start at the first kept frame."""
    tick = seconds if tick is None else tick
    while tick <= seconds + _TICK_SLACK:
        tick += period
    return tick


def _seconds(raw: av.VideoFrame, decoded: int, source_fps: float | None, origin: float) -> float | None:
    if raw.pts is not None and raw.time_base is not None:
        return float(raw.pts * raw.time_base) - origin
    return decoded / source_fps if source_fps else None


def _stream_rate(stream: av.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return None


def _stream_count(stream: av.VideoStream, container: av.container.InputContainer, rate: float | None) -> int | None:
    """The container's frame count, else duration times rate, else None."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base and rate:
        return round(float(stream.duration * stream.time_base) * rate)
    if container.duration and rate:
        return round(container.duration / av.time_base * rate)
    return None


def _estimate(count: int | None, source_fps: float | None, fps: float | None, max_frames: int | None) -> int | None:
    if count is not None and source_fps and fps and fps < source_fps:
        count = math.ceil(count * fps / source_fps)
    if count is not None and max_frames is not None:
        count = min(count, max_frames)
    return count


def _output_size(native: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
    nw, nh = native
    if width and height:
        return width, height
    if width:
        return width, max(2, 2 * round(nh * width / nw / 2))
    if height:
        return max(2, 2 * round(nw * height / nh / 2)), height
    return nw, nh


def _check_options(fps: float | None, width: int | None, height: int | None, max_frames: int | None) -> None:
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= 1000):
        raise InputError(f"sampling rate fps={fps!r} is invalid", "pass a frame rate in (0, 1000] or leave it unset")
    for name, value in (("width", width), ("height", height), ("max_frames", max_frames)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1):
            raise InputError(f"{name}={value!r} is invalid", f"pass a positive integer {name} or leave it unset")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
