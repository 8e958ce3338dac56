"""The replay teacher: labels computed earlier, one PNG of class ids per frame, or an earlier run's.

Labels live in a local directory, a ``file://`` URI or ``s3://bucket/prefix``, named
``{frame_index:06d}.png`` (8-bit grayscale or palette PNGs whose pixel values are class ids,
0 = background). ``write_labels`` writes such files.

A run keeps the teacher labels of the keyframes it learned from (committed with their segments), so an
earlier run's stream is a label source too: ``replay:RUN/streams/stream_id=ID`` (the stream folder
``odist distill`` prints) replays the labels of that stream's keyframes.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image
from scipy import ndimage

from odist.config import TeacherConfig
from odist.errors import StorageError, TeacherError
from odist.models.teachers.base import Labels
from odist.models.teachers.charged import ChargedTeacher
from odist.models.teachers.registry import TEACHERS
from odist.storage.layout import StreamArea
from odist.storage.location import parse_location
from odist.storage.masks import decode_mask
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.reader import read_stream_table
from odist.video.frame import Frame

_PNG_MODES = ("L", "P")
MAX_LABEL_PIXELS = 8192 * 8192  # an 8K frame's label; checked before decoding, below Pillow's own bound
LABEL_SIZE_FIX = "labels must be computed at the decoded frame size; use matching --width/--height"
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
_RUN_STREAM = re.compile(r"(?P<run>.*?)/?streams/stream_id=(?P<stream_id>[^/]+)/?", re.DOTALL)


def label_filename(frame_index: int) -> str:
    """The file name holding the labels of frame ``frame_index``."""
    return f"{frame_index:06d}.png"


def write_labels(directory: str | os.PathLike[str], frame_index: int, classes: np.ndarray) -> Path:
    """Write an HxW map of class ids (0..255) as ``directory/{frame_index:06d}.png``; return its path."""
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ValueError(f"labels must be an HxW class map, got shape {classes.shape}")
    if classes.size and (classes.min() < 0 or classes.max() > 255):
        raise ValueError("class ids must lie in 0..255 to fit an 8-bit PNG")
    path = Path(directory) / label_filename(frame_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(classes.astype(np.uint8), mode="L").save(path)
    return path


def component_boxes(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, 5) float32 rows ``class_id, x0, y0, x1, y1``: one per 8-connected region of each class.

    Coordinates are pixel edges: a region covering columns ``a..b`` spans ``x0 = a`` to ``x1 = b + 1``.
    """
    rows: list[tuple[int, int, int, int, int]] = []
    for class_id in range(1, num_classes):
        regions, count = ndimage.label(classes == class_id, structure=_EIGHT_CONNECTED)
        if count:
            for ys, xs in ndimage.find_objects(regions):
                rows.append((class_id, xs.start, ys.start, xs.stop, ys.stop))
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def open_labels(location: str) -> ObjectStore:
    """The label store at a local path, ``file://`` URI or ``s3://bucket/prefix`` (``storage.open_store``,
    with its retries); a ``TeacherError`` when it is missing or holds no labels."""
    where = parse_location(location)
    if where.scheme == "s3" and not where.bucket:
        raise TeacherError(f"replay location {location!r} names no bucket", "write s3://bucket/prefix")
    if where.is_local and not Path(where.path).expanduser().is_dir():
        raise TeacherError(
            f"replay label directory {Path(where.path).expanduser()} does not exist",
            "pass an existing directory of {frame_index:06d}.png label files to --teacher replay:DIR",
        )
    try:
        store = open_store(location)
        if where.scheme == "s3" and not store.has_any():
            raise TeacherError(f"no replay labels under {store.uri}/",
                               "upload {frame_index:06d}.png label files there or fix the prefix")
    except StorageError as exc:
        raise TeacherError(f"cannot list replay labels at {location}: {exc}",
                           "check the bucket name, credentials and AWS_ENDPOINT_URL") from None
    return store


class LabelSource(Protocol):
    """Where replayed labels come from: a folder of PNGs (``PngLabels``) or a run's stream (``RunLabels``)."""

    def where(self, frame_index: int) -> str:
        """The label's location, for messages."""
        ...

    def read(self, frame_index: int) -> np.ndarray | None:
        """Frame ``frame_index``'s (H, W) uint8 class map, or None when the source has none."""
        ...

    def missing_fix(self) -> str:
        """How to fix a frame with no label."""
        ...


class PngLabels:
    """``{frame_index:06d}.png`` files in a store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def where(self, frame_index: int) -> str:
        return self.store.url(label_filename(frame_index))

    def read(self, frame_index: int) -> np.ndarray | None:
        try:
            data = self.store.get_or_none(label_filename(frame_index))
        except StorageError as exc:
            raise TeacherError(f"cannot read replay label {self.where(frame_index)}: {exc.what}", exc.fix) from None
        return None if data is None else _decode(data, self.where(frame_index))

    def missing_fix(self) -> str:
        return "compute labels for every keyframe (odist.models.teachers.replay.write_labels)"


class RunLabels:
    """The teacher labels a run committed for one stream's keyframes (read once, on first use)."""

    def __init__(self, area: StreamArea) -> None:
        self.area = area
        self._rows: dict[int, dict] | None = None

    def frame_indices(self) -> list[int]:
        """The keyframes whose labels the stream kept, in order."""
        return sorted(self._table())

    @property
    def stream_url(self) -> str:
        return self.area.store.url(self.area.prefix)

    def where(self, frame_index: int) -> str:
        return f"{self.stream_url} keyframe {frame_index}"

    def read(self, frame_index: int) -> np.ndarray | None:
        row = self._table().get(frame_index)
        return None if row is None else decode_mask(row["data"], row["height"], row["width"])

    def missing_fix(self) -> str:
        return (f"that stream kept labels for its {len(self._table())} keyframes only; replay them on those frames "
                "(odist pretrain) or label this stream with a teacher")

    def _table(self) -> dict[int, dict]:
        if self._rows is None:
            try:
                rows = read_stream_table(self.area, "labels").to_pylist()
            except StorageError as exc:
                raise TeacherError(f"cannot read the labels of {self.stream_url}: {exc.what}",
                                   exc.fix) from None
            self._rows = {row["frame_index"]: row for row in rows}
        return self._rows


def run_stream_location(location: str) -> tuple[str, str] | None:
    """``(run root, stream id)`` when ``location`` is a run's stream folder (``RUN/streams/stream_id=ID``)."""
    match = _RUN_STREAM.fullmatch(str(location))
    return None if match is None else (match["run"] or ".", match["stream_id"])


class ReplayTeacher(ChargedTeacher):
    """Reads precomputed labels; charges ``charged_ms``/``charged_gflops`` per frame like the oracle."""

    name = "replay"

    def __init__(self, labels: LabelSource, config: TeacherConfig, class_names: Sequence[str]) -> None:
        super().__init__(config, class_names)
        self.labels = labels

    def label_frame(self, frame: Frame) -> Labels:
        where = self.labels.where(frame.index)
        classes = self.labels.read(frame.index)
        if classes is None:
            raise TeacherError(f"no replay label for frame {frame.index}: expected {where}",
                               self.labels.missing_fix())
        if classes.shape != (frame.height, frame.width):
            raise TeacherError(
                f"replay label {where} is {classes.shape[1]}x{classes.shape[0]} but frame {frame.index} is "
                f"{frame.width}x{frame.height}",
                "labels must be computed at the decoded frame size; use matching --width/--height",
            )
        top = int(classes.max(initial=0))
        if top >= len(self.class_names):
            raise TeacherError(
                f"replay label {where} holds class id {top}, but the stream has {len(self.class_names)} classes "
                f"{list(self.class_names)}",
                "write class ids 0..len(classes)-1 or configure the matching classes",
            )
        return Labels(classes=classes, boxes=component_boxes(classes, len(self.class_names)))


def _decode(data: bytes, where: str) -> np.ndarray:
    """The class map in a label image; its declared size is checked before any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_size(image.width, image.height, where)
            mode = image.mode
            classes = np.array(image) if mode in _PNG_MODES else None
    except Image.DecompressionBombError:  # Pillow refuses the declared size before ours is checked
        size = _png_size(data)
        declared = f"{size[0]}x{size[1]} pixels" if size else "an image size"
        raise TeacherError(f"replay label {where} declares {declared}, more than {MAX_LABEL_PIXELS}",
                           LABEL_SIZE_FIX) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise TeacherError(f"replay label {where} is not a readable image: {exc}",
                           "write labels as 8-bit PNGs (replay.write_labels)") from None
    if classes is None:
        raise TeacherError(f"replay label {where} is a {mode!r} image, not 8-bit grayscale or palette",
                           "write pixel values = class ids as an 8-bit PNG (replay.write_labels)")
    return classes.astype(np.uint8, copy=False)


def _png_size(data: bytes) -> tuple[int, int] | None:
    """The width and height a PNG's header declares (None for other data)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _check_size(width: int, height: int, where: str) -> None:
    if width * height > MAX_LABEL_PIXELS:
        raise TeacherError(f"replay label {where} declares {width}x{height} pixels, more than {MAX_LABEL_PIXELS}",
                           LABEL_SIZE_FIX)


@TEACHERS.register("replay")
def build_replay(arg: str | None, config: TeacherConfig, class_names: Sequence[str], device: str) -> ReplayTeacher:
    """``replay:LOCATION`` with LOCATION a directory, ``file://`` URI or ``s3://bucket/prefix`` of PNGs, or a
    run's stream folder ``RUN/streams/stream_id=ID``."""
    if not arg:
        raise TeacherError("the replay teacher needs a label location",
                           "write --teacher replay:DIR, replay:file:///DIR or replay:s3://bucket/prefix")
    return ReplayTeacher(open_replay_labels(arg), config, class_names)


def open_replay_labels(location: str) -> LabelSource:
    """The label source at ``location``: a run's stream (``RunLabels``) or a folder of PNGs (``PngLabels``)."""
    stream = run_stream_location(location)
    if stream is None:
        return PngLabels(open_labels(location))
    run, stream_id = stream
    try:
        area = StreamArea(open_store(run), stream_id)
        committed = area.last_commit() is not None
    except StorageError as exc:
        raise TeacherError(f"cannot read run {run}: {exc.what}", exc.fix) from None
    if not committed:
        raise TeacherError(f"stream {stream_id} of run {run} has committed nothing",
                           "pass the stream folder of a run that has processed frames (odist ls RUN)")
    return RunLabels(area)
