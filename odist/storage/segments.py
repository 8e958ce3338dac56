"""Buffer a stream's per-frame results and commit them segment by segment."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from odist.run_config import SEGMENT_FRAMES
from odist.storage.layout import Commit, StreamArea
from odist.storage.masks import ENCODING, encode_mask
from odist.storage.schema import LABEL_SCHEMA, MASK_SCHEMA, RECORD_SCHEMA, parquet_bytes


class StateProvider(Protocol):
    """What a writer stores with each segment (a stream pipeline is one)."""

    def checkpoint(self, next_frame: int) -> bytes:
        """The serialised state after the segment's last frame; ``next_frame`` is the index to resume at."""
        ...


class SegmentWriter:
    """Commits every ``segment_frames`` frames (or once the oldest frame buffered is ``commit_every_s`` old):
    records, masks, the keyframes' teacher labels and the state after the last of them.

    ``state`` (a ``StateProvider``, or a plain function of the next frame index) gives the serialised
    state stored with each segment, so a resumed stream continues exactly after it.
    """

    def __init__(self, area: StreamArea, state: StateProvider | Callable[[int], bytes], *,
                 segment_frames: int = SEGMENT_FRAMES, allow_gaps: bool = False, commit_every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if segment_frames < 1:
            raise ValueError("segment_frames must be positive")
        self.area = area
        self.checkpoint: Callable[[int], bytes] = getattr(state, "checkpoint", state)
        self.segment_frames = segment_frames
        self.commit_every_s = commit_every_s  # also commit once the buffer's first frame is this old
        self._clock = clock
        self._since = clock()
        self.allow_gaps = allow_gaps  # frame indices may skip (a live camera's drops)
        self._records: list[dict[str, Any]] = []
        self._masks: list[dict[str, Any]] = []
        self._labels: list[dict[str, Any]] = []
        self.mask_bytes = 0
        self.raw_mask_bytes = 0

    def add(self, record: dict[str, Any], mask: np.ndarray) -> None:
        """Queue one frame; commits a segment when one is full."""
        data = encode_mask(mask)
        self.mask_bytes += len(data)
        self.raw_mask_bytes += mask.size
        self._records.append(record)
        self._masks.append(_mask_row(record["frame_index"], mask, data))
        if len(self._records) == 1:
            self._since = self._clock()
        overdue = self.commit_every_s is not None and self._clock() - self._since >= self.commit_every_s
        if len(self._records) >= self.segment_frames or overdue:
            self.flush()

    def add_label(self, frame_index: int, classes: np.ndarray) -> None:
        """Queue the teacher's labels of keyframe ``frame_index``; they commit with the next segment."""
        self._labels.append(_mask_row(frame_index, classes, encode_mask(classes)))

    def flush(self) -> Commit | None:
        """Commit what is buffered (no-op when empty)."""
        if not self._records:
            return None
        first, last = self._records[0]["frame_index"], self._records[-1]["frame_index"]
        commit = self.area.commit_segment(
            first, last, parquet_bytes(self._records, RECORD_SCHEMA), parquet_bytes(self._masks, MASK_SCHEMA),
            self.checkpoint(last + 1), allow_gap=self.allow_gaps,
            labels=parquet_bytes(self._labels, LABEL_SCHEMA) if self._labels else None)
        self._records.clear()
        self._masks.clear()
        self._labels.clear()
        return commit

    def finish(self, summary: dict[str, Any]) -> None:
        """Commit the last segment, then mark the stream done with its summary."""
        self.flush()
        self.area.finish(summary)


def _mask_row(frame_index: int, classes: np.ndarray, data: bytes) -> dict[str, Any]:
    return {"frame_index": frame_index, "height": classes.shape[0], "width": classes.shape[1], "encoding": ENCODING,
            "data": data}
