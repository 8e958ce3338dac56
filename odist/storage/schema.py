"""Versioned Parquet schemas of per-frame records and predicted masks."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
RECORD_SCHEMA = pa.schema([
    ("frame_index", pa.int64()),
    ("timestamp", pa.float64()),
    ("keyframe", pa.bool_()),
    ("updates", pa.int32()),
    ("stride", pa.int32()),
    ("keyframe_accuracy", pa.float32()),
    ("trigger", pa.string()),  # why a keyframe was taken: ladder, cut or confidence (null on other frames)
    ("student_seconds", pa.float32()),
    ("teacher_seconds", pa.float32()),
    ("miou", pa.float32()),
    ("miou_foreground", pa.float32()),
    # By class id (odist.distill.class_stats): the student's pixel fraction and regions; the teacher's on keyframes.
    ("class_pixels", pa.list_(pa.float32())),
    ("class_regions", pa.list_(pa.int32())),
    ("teacher_class_pixels", pa.list_(pa.float32())),
    ("teacher_class_regions", pa.list_(pa.int32())),
], metadata={"odist_schema_version": str(SCHEMA_VERSION)})
MASK_SCHEMA = pa.schema([
    ("frame_index", pa.int64()),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("encoding", pa.string()),
    ("data", pa.binary()),
], metadata={"odist_schema_version": str(SCHEMA_VERSION)})
# A keyframe's teacher labels are stored as its predicted masks are (one class map per row).
LABEL_SCHEMA = MASK_SCHEMA


def parquet_bytes(rows: list[dict], schema: pa.Schema) -> bytes:
    """Rows as one zstd-compressed Parquet file, in memory."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema), sink, compression="zstd")
    return sink.getvalue()
