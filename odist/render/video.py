"""``render_stream``: an H.264 video of a stream's source frames with its committed masks blended in.

The source is reopened from what the stream's ``stream.json`` recorded (input, size, sampling, seed); the
masks and per-frame records come from committed segments only, so what is shown is what readers see.
With ``side_by_side`` the teacher's labels (a synthetic stream's truth, or a replay teacher's labels) are
drawn left of the student's masks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
import pyarrow.parquet as pq

from odist.errors import InputError, OutputError
from odist.render.overlay import annotate, blend, status_line
from odist.storage.documents import STREAM_MANIFEST
from odist.storage.integrity import require_complete
from odist.storage.layout import Commit, StreamArea
from odist.storage.listing import stream_of_run
from odist.storage.masks import decode_mask
from odist.storage.schema import MASK_SCHEMA, RECORD_SCHEMA
from odist.video.frame import Frame
from odist.video.open import open_source

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")


@dataclass(frozen=True)
class Rendered:
    """What ``render_stream`` wrote."""

    path: Path
    frames: int
    first: int
    last: int
    width: int
    height: int
    side_by_side: bool


def render_stream(run_uri: str, stream_id: str, out: str | Path, *, first: int | None = None,
                  last: int | None = None, side_by_side: bool = False, source_uri: str | None = None,
                  progress: bool = False) -> Rendered:
    """Render frames ``first..last`` (inclusive; default: every committed frame) of ``stream_id``."""
    path = output_path(out)
    area = stream_of_run(run_uri, stream_id)
    store = area.store
    commits = area.commits()
    if not commits:
        raise InputError(f"stream {stream_id} in {store.uri} has no committed masks yet",
                         "run or resume the stream first (odist ls shows its status)")
    require_complete(area)  # a missing committed object is one line naming the commit and the key
    manifest = _stream_manifest(area)
    lo = commits[0].first_frame if first is None else first
    hi = commits[-1].last_frame if last is None else last
    if lo < 0 or hi < lo:
        raise InputError(f"frame range {lo}..{hi} is empty", "pass --from N --to M with 0 <= N <= M")
    source = _open(manifest, source_uri, stream_id)
    labeller = _labeller(manifest, source) if side_by_side else None
    classes = tuple(manifest.get("config", {}).get("classes") or ("background",))
    fps = manifest.get("source", {}).get("fps") or 30.0
    written = 0
    size = (0, 0)
    miou = _RunningMiou()
    try:
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=Fraction(float(fps)).limit_denominator(1001))
            stream.pix_fmt, stream.options = "yuv420p", {"crf": "20"}
            bar = _bar(hi - lo + 1, progress, stream_id)
            for frame, record, mask in _aligned(source, area, commits, lo, hi):
                picture = _compose(frame, record, mask, labeller, classes, miou.add(record.get("miou")))
                if written == 0:
                    size = (picture.shape[1] + picture.shape[1] % 2, picture.shape[0] + picture.shape[0] % 2)
                    stream.width, stream.height = size
                picture = _pad(picture, size)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
                written += 1
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
            container.mux(stream.encode(None))
    except (OSError, av.error.FFmpegError) as exc:
        raise OutputError(f"cannot write {path} ({getattr(exc, 'strerror', None) or exc})",
                          "choose a writable --out path ending in .mp4") from None
    if written == 0:
        path.unlink(missing_ok=True)
        raise InputError(f"stream {stream_id} has no committed frames in {lo}..{hi}",
                         f"committed frames are {commits[0].first_frame}..{commits[-1].last_frame}")
    return Rendered(path, written, lo, lo + written - 1, size[0], size[1], side_by_side)


def output_path(out: str | Path) -> Path:
    """``out`` as the video to write; an ``OutputError`` unless it ends in a container H.264 goes into."""
    path = Path(out)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        problem = f"{path.suffix} is not a video container" if path.suffix else "it has no file extension"
        raise OutputError(f"cannot write a video to {path}: {problem}",
                          f"choose an --out path ending in {', '.join(VIDEO_SUFFIXES)}")
    return path


def _stream_manifest(area: StreamArea) -> dict[str, Any]:
    manifest = area.manifest()
    if manifest is None:
        raise InputError(f"stream {area.stream_id} in {area.store.uri} has no {STREAM_MANIFEST}",
                         "render reads the stream's input from it; the run is incomplete")
    return manifest


def _open(manifest: dict[str, Any], source_uri: str | None, stream_id: str) -> Any:
    uri = source_uri or manifest.get("input")
    if not uri:
        raise InputError(f"the {STREAM_MANIFEST} of stream {stream_id} names no input",
                         "pass --input PATH to say which video the stream was made from")
    src = manifest.get("source", {})
    options = manifest.get("options", {})  # absent in streams written before odist recorded them
    try:
        return open_source(uri, seed=int(options.get("seed") or 0), width=src.get("width"), height=src.get("height"),
                           frames=options.get("frames"), fps=options.get("fps"))
    except InputError as exc:
        raise InputError(f"the source of stream {stream_id} cannot be opened: {exc.what}",
                         "if the video has moved, pass --input PATH to read it from where it is now") from None


def _labeller(manifest: dict[str, Any], source: Any) -> Any:
    """A function frame -> teacher class map, for the side-by-side view."""
    if getattr(source, "spec", None) is not None:  # a synthetic stream carries its exact truth
        return lambda frame: frame.truth
    teacher = manifest.get("config", {}).get("teacher", {})
    if str(teacher.get("name", "")).startswith("replay:"):
        from odist.config import config_from_dict
        from odist.models.teachers import build_teacher

        config = config_from_dict(manifest["config"])
        replay = build_teacher(config.teacher.name, config.teacher, config.classes)
        return lambda frame: replay.label([frame]).labels[0].classes
    raise InputError("--side-by-side needs the teacher's labels: a synthetic stream or replay labels",
                     f"this stream's teacher is {teacher.get('name')!r}; render without --side-by-side")


def _aligned(source: Any, area: StreamArea, commits: list[Commit], lo: int,
             hi: int) -> Iterator[tuple[Frame, dict[str, Any], np.ndarray]]:
    """(frame, record, mask) of every committed frame in ``lo..hi``, one segment in memory at a time."""
    frames = _frames_from(source, lo)
    frame = next(frames, None)
    for commit in commits:
        if commit.last_frame < lo or commit.first_frame > hi:
            continue
        records = pq.read_table(io.BytesIO(area.store.get(commit.records)), schema=RECORD_SCHEMA).to_pylist()
        masks = pq.read_table(io.BytesIO(area.store.get(commit.masks)), schema=MASK_SCHEMA).to_pylist()
        for record, row in zip(records, masks, strict=True):
            index = record["frame_index"]
            if not lo <= index <= hi:
                continue
            while frame is not None and frame.index < index:
                frame = next(frames, None)
            if frame is None:
                return
            if frame.index == index:
                yield frame, record, decode_mask(row["data"], row["height"], row["width"])


def _frames_from(source: Any, start: int) -> Iterator[Frame]:
    if hasattr(source, "frame"):
        yield from (source.frame(i) for i in range(start, len(source)))
        return
    for frame in source:
        if frame.index >= start:
            yield frame


class _RunningMiou:
    """The mean of the per-frame mIoU scores seen so far (frames without a score are skipped)."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, value: float | None) -> float | None:
        if value is not None and not math.isnan(value):
            self.total, self.count = self.total + value, self.count + 1
        return self.total / self.count if self.count else None


def _compose(frame: Frame, record: dict[str, Any], mask: np.ndarray, labeller: Any, classes: tuple[str, ...],
             running_miou: float | None) -> np.ndarray:
    if mask.shape != frame.image.shape[:2]:
        raise InputError(f"frame {frame.index} of the source is {frame.image.shape[1]}x{frame.image.shape[0]} but "
                         f"its committed mask is {mask.shape[1]}x{mask.shape[0]}",
                         "pass --input with the video the stream was made from")
    line = status_line(record, running_miou)
    student = annotate(blend(frame.image, mask), classes, line, "student" if labeller else None)
    if labeller is None:
        return student
    teacher = annotate(blend(frame.image, np.asarray(labeller(frame), np.uint8)), classes,
                       f"frame {frame.index}", "teacher")
    return np.concatenate([teacher, student], axis=1)


def _pad(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if picture.shape[:2] == (height, width):
        return picture
    out = np.zeros((height, width, 3), np.uint8)
    out[:picture.shape[0], :picture.shape[1]] = picture
    return out


def _bar(total: int, enabled: bool, label: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"render {label}", unit="frame", dynamic_ncols=True)
