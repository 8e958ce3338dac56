"""Network helpers the tests share (a module of its own: ``conftest`` names more than one file here)."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_frames(source, count: int, deadline_s: float = 60.0) -> list:
    """``count`` frames from a started ``LiveSource``, failing the test naming its stats at the deadline."""
    import time

    import pytest

    frames, deadline = [], time.monotonic() + deadline_s
    while len(frames) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"only {len(frames)} of {count} frames within {deadline_s:.0f} s: {source.stats}")
        frame = source.read(timeout=0.5)
        if frame is not None:
            frames.append(frame)
    return frames
