"""Chosen frames of a stream as overlay pictures (teacher | student where the teacher's labels exist).

``sample_frames`` reopens the source as ``odist render`` does and draws the committed masks of the frames
asked for; a stream whose teacher labels are not stored (a model teacher) gets the student's masks only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from odist.errors import InputError
from odist.render.overlay import annotate, blend, status_line
from odist.render.video import _aligned, _labeller, _open, _stream_manifest
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store


@dataclass(frozen=True)
class SampleFrame:
    """One drawn frame: its record, the picture (teacher | student, or student alone) and a caption."""

    index: int
    record: dict[str, Any]
    picture: np.ndarray
    with_teacher: bool

    def png(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.picture).save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def sample_frames(run_uri: str, stream_id: str, indices: Sequence[int], width: int = 320) -> list[SampleFrame]:
    """The committed frames ``indices`` of ``stream_id`` drawn with their masks, each side ``width`` px at most.

    Raises ``InputError`` when the stream's source cannot be reopened (a video that has moved).
    """
    wanted = sorted(set(indices))
    if not wanted:
        return []
    area = StreamArea(open_store(run_uri), stream_id)
    manifest = _stream_manifest(area)
    source = _open(manifest, None, stream_id)
    try:
        labeller = _labeller(manifest, source)
    except InputError:  # the teacher's labels are not stored: show the student alone
        labeller = None
    classes = tuple(manifest.get("config", {}).get("classes") or ("background",))
    found: list[SampleFrame] = []
    for frame, record, mask in _aligned(source, area, area.commits(), wanted[0], wanted[-1]):
        if frame.index not in wanted:
            continue
        score = record.get("miou")
        line = status_line(record, score if score is not None and np.isfinite(score) else None)
        student = annotate(_fit(blend(frame.image, mask), width), classes, line, "student" if labeller else None)
        picture = student
        if labeller is not None:
            truth = np.asarray(labeller(frame), np.uint8)
            teacher = annotate(_fit(blend(frame.image, truth), width), classes, f"frame {frame.index}", "teacher")
            picture = np.concatenate([teacher, student], axis=1)
        found.append(SampleFrame(frame.index, record, picture, labeller is not None))
    return found


def _fit(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` scaled down to ``width`` pixels wide (kept as it is when narrower)."""
    if image.shape[1] <= width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
