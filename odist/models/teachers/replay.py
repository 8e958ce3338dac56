"""The replay teacher: labels computed earlier, one PNG of class ids per frame.

Labels live in a local directory, a ``file://`` URI or ``s3://bucket/prefix``, named
``{frame_index:06d}.png`` (8-bit grayscale or palette PNGs whose pixel values are class ids,
0 = background). ``write_labels`` writes such files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from odist.config import TeacherConfig
from odist.errors import StorageError, TeacherError
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.models.teachers.oracle import charged_result
from odist.models.teachers.registry import TEACHERS
from odist.storage.location import parse_location
from odist.storage.objectstore import ObjectStore, open_store
from odist.video.frame import Frame

_PNG_MODES = ("L", "P")
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


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


class ReplayTeacher(Teacher):
    """Reads precomputed labels; charges ``charged_ms``/``charged_gflops`` per frame like the oracle."""

    name = "replay"

    def __init__(self, store: ObjectStore, config: TeacherConfig, class_names: Sequence[str]) -> None:
        super().__init__(class_names)
        self.store = store
        self.config = config

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        return charged_result([self._read(frame) for frame in frames], self.config)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return float(self.config.charged_gflops)

    def _read(self, frame: Frame) -> Labels:
        name = label_filename(frame.index)
        where = self.store.url(name)
        try:
            data = self.store.get_or_none(name)
        except StorageError as exc:
            raise TeacherError(f"cannot read replay label {where}: {exc.what}", exc.fix) from None
        if data is None:
            raise TeacherError(f"no replay label for frame {frame.index}: expected {where}",
                               "compute labels for every keyframe (odist.models.teachers.replay.write_labels)")
        classes = _decode(data, where)
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
    try:
        with Image.open(io.BytesIO(data)) as image:
            mode = image.mode
            classes = np.array(image) if mode in _PNG_MODES else None
    except (OSError, SyntaxError, ValueError) as exc:
        raise TeacherError(f"replay label {where} is not a readable image: {exc}",
                           "write labels as 8-bit PNGs (replay.write_labels)") from None
    if classes is None:
        raise TeacherError(f"replay label {where} is a {mode!r} image, not 8-bit grayscale or palette",
                           "write pixel values = class ids as an 8-bit PNG (replay.write_labels)")
    return classes.astype(np.uint8, copy=False)


@TEACHERS.register("replay")
def build_replay(arg: str | None, config: TeacherConfig, class_names: Sequence[str], device: str) -> ReplayTeacher:
    """``replay:LOCATION`` with LOCATION a directory, ``file://`` URI or ``s3://bucket/prefix``."""
    if not arg:
        raise TeacherError("the replay teacher needs a label location",
                           "write --teacher replay:DIR, replay:file:///DIR or replay:s3://bucket/prefix")
    return ReplayTeacher(open_labels(arg), config, class_names)
