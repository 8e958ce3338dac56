"""Turn a source spec (``synthetic:NAME`` or a video file's location) into a frame source."""

from __future__ import annotations

from odist.video.archive import ArchiveSource
from odist.video.synthetic import SyntheticSource, is_synthetic_spec, parse_synthetic_spec

SYNTHETIC_DEFAULT_SIZE = (640, 360)
SYNTHETIC_DEFAULT_FRAMES = 900
SYNTHETIC_DEFAULT_FPS = 30.0


def open_source(spec: str, *, seed: int = 0, width: int | None = None, height: int | None = None,
                frames: int | None = None, fps: float | None = None) -> SyntheticSource | ArchiveSource:
    """``synthetic:NAME`` -> a SyntheticSource (640x360, 900 frames at 30 fps unless given; with one
    side given the other keeps 16:9); anything else is a video file (a path, ``file://``, ``s3://`` or
    ``http(s)://``, see ``video_file``), with ``frames`` as its frame cap."""
    if is_synthetic_spec(spec):
        w, h = _synthetic_size(width, height)
        return SyntheticSource(
            parse_synthetic_spec(spec), seed=seed, width=w, height=h,
            frames=SYNTHETIC_DEFAULT_FRAMES if frames is None else frames,
            fps=SYNTHETIC_DEFAULT_FPS if fps is None else fps,
        )
    return ArchiveSource(spec, fps=fps, width=width, height=height, max_frames=frames)


def _synthetic_size(width: int | None, height: int | None) -> tuple[int, int]:
    dw, dh = SYNTHETIC_DEFAULT_SIZE
    if width is None and height is None:
        return dw, dh
    if height is None:
        return width, max(2, 2 * round(width * dh / dw / 2))
    if width is None:
        return max(2, 2 * round(height * dw / dh / 2)), height
    return width, height
