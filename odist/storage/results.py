"""A stream's output folder: per-frame records and masks in Parquet segments, checkpoint, summary.

Layout under ``OUT``::

    run.json                      config, input, teacher, odist version (written first)
    records/part-AAAAAA-BBBBBB.parquet   per-frame records for frames AAAAAA..BBBBBB
    masks/part-AAAAAA-BBBBBB.parquet     predicted masks (zlib-u8, see odist.storage.masks)
    checkpoint.pt                 final student, optimiser, stride ladder, ledger
    summary.json                  written last: its presence marks a complete run

Every file is written to a temporary name and renamed, so none is ever half-written.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from odist.errors import OutputError
from odist.storage.atomic import write_bytes_atomic, write_json_atomic
from odist.storage.masks import ENCODING, encode_mask

SCHEMA_VERSION = 1
RECORD_SCHEMA = pa.schema([
    ("frame_index", pa.int64()),
    ("timestamp", pa.float64()),
    ("keyframe", pa.bool_()),
    ("updates", pa.int32()),
    ("stride", pa.int32()),
    ("keyframe_accuracy", pa.float32()),
    ("student_seconds", pa.float32()),
    ("teacher_seconds", pa.float32()),
    ("miou", pa.float32()),
    ("miou_foreground", pa.float32()),
], metadata={"odist_schema_version": str(SCHEMA_VERSION)})
MASK_SCHEMA = pa.schema([
    ("frame_index", pa.int64()),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("encoding", pa.string()),
    ("data", pa.binary()),
], metadata={"odist_schema_version": str(SCHEMA_VERSION)})


class ResultWriter:
    """Buffers per-frame results and writes them in segments of ``segment_frames`` frames."""

    def __init__(self, out_dir: str | Path, *, segment_frames: int = 256, overwrite: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.segment_frames = segment_frames
        self._prepare(overwrite)
        self._records: list[dict[str, Any]] = []
        self._masks: list[dict[str, Any]] = []
        self.mask_bytes = 0
        self.raw_mask_bytes = 0

    def _prepare(self, overwrite: bool) -> None:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise OutputError(f"--out {self.out_dir} is a file", "pass a folder path")
        if self.out_dir.is_dir() and any(self.out_dir.iterdir()):
            if not overwrite:
                raise OutputError(f"--out {self.out_dir} already holds files",
                                  "choose an empty or new folder, or pass --overwrite to replace them")
            for name in ("records", "masks"):
                shutil.rmtree(self.out_dir / name, ignore_errors=True)
            for name in ("summary.json", "checkpoint.pt", "run.json"):
                (self.out_dir / name).unlink(missing_ok=True)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create --out {self.out_dir}: {exc.strerror}", "pass a writable folder") from None

    def write_run_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.out_dir / "run.json", {"schema_version": SCHEMA_VERSION, **manifest})

    def add(self, record: dict[str, Any], mask: np.ndarray) -> None:
        """Queue one frame's record and predicted mask; writes a segment when one is full."""
        self._records.append(record)
        data = encode_mask(mask)
        self.mask_bytes += len(data)
        self.raw_mask_bytes += mask.size
        self._masks.append({"frame_index": record["frame_index"], "height": mask.shape[0], "width": mask.shape[1],
                            "encoding": ENCODING, "data": data})
        if len(self._records) >= self.segment_frames:
            self.flush()

    def flush(self) -> None:
        """Write the buffered frames as one records segment and one masks segment."""
        if not self._records:
            return
        first, last = self._records[0]["frame_index"], self._records[-1]["frame_index"]
        name = f"part-{first:06d}-{last:06d}.parquet"
        self._write_table(self.out_dir / "records" / name, pa.Table.from_pylist(self._records, RECORD_SCHEMA))
        self._write_table(self.out_dir / "masks" / name, pa.Table.from_pylist(self._masks, MASK_SCHEMA))
        self._records.clear()
        self._masks.clear()

    @staticmethod
    def _write_table(path: Path, table: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        write_bytes_atomic(path, sink.getvalue())

    def finish(self, summary: dict[str, Any]) -> Path:
        """Flush the last segment and write ``summary.json`` last; returns its path."""
        self.flush()
        path = self.out_dir / "summary.json"
        write_json_atomic(path, {"schema_version": SCHEMA_VERSION, **summary})
        return path


def read_records(out_dir: str | Path) -> pa.Table:
    """All per-frame records of a finished output folder, ordered by frame index."""
    table = pq.read_table(Path(out_dir) / "records", schema=RECORD_SCHEMA)
    return table.sort_by("frame_index")


def read_masks(out_dir: str | Path) -> pa.Table:
    table = pq.read_table(Path(out_dir) / "masks", schema=MASK_SCHEMA)
    return table.sort_by("frame_index")
