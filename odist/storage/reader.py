"""Read back what a run committed: per stream, or across all streams as one Arrow dataset."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from odist.errors import StorageError
from odist.storage.layout import STREAMS, StreamArea, stream_ids
from odist.storage.masks import decode_mask
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.schema import LABEL_SCHEMA, MASK_SCHEMA, RECORD_SCHEMA

_SCHEMAS = {"records": RECORD_SCHEMA, "masks": MASK_SCHEMA, "labels": LABEL_SCHEMA}


def read_stream_table(area: StreamArea, kind: str = "records") -> pa.Table:
    """A stream's committed ``records``, ``masks`` or keyframe teacher ``labels``, ordered by frame index."""
    schema = _SCHEMAS[kind]
    tables = []
    for commit in area.commits():
        key = getattr(commit, kind)
        if key is None:  # a segment without keyframes has no labels
            continue
        try:
            tables.append(pq.read_table(io.BytesIO(area.store.get(key)), schema=schema))
        except pa.ArrowException as exc:
            raise StorageError(f"committed object {area.store.url(key)} is not readable Parquet: {exc}",
                               "restore it, or delete the stream's commits after it and resume") from None
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables).sort_by("frame_index")


def decode_masks(table: pa.Table) -> dict[int, np.ndarray]:
    """Frame index -> (H, W) uint8 class map, from a masks table."""
    return {row["frame_index"]: decode_mask(row["data"], row["height"], row["width"]) for row in table.to_pylist()}


def committed_record_files(store: ObjectStore) -> list[str]:
    """Keys of every committed records segment of every stream in the run."""
    return [c.records for sid in stream_ids(store) for c in StreamArea(store, sid).commits()]


def run_dataset(store: ObjectStore) -> ds.Dataset:
    """All committed records of a run as one dataset, with ``stream_id`` as a hive partition column."""
    filesystem, root = store.arrow_filesystem()
    paths = [f"{root}/{key}" for key in committed_record_files(store)]
    partitioning = ds.partitioning(pa.schema([("stream_id", pa.string())]), flavor="hive")
    schema = RECORD_SCHEMA.append(pa.field("stream_id", pa.string()))
    return ds.dataset(paths, schema=schema, format="parquet", filesystem=filesystem,
                      partitioning=partitioning, partition_base_dir=f"{root}/{STREAMS}")


def read_run(run: str) -> ds.Dataset:
    """Every committed frame record of the run root ``run`` (a folder, ``file://`` or ``s3://`` URI) as one
    Arrow dataset, with ``stream_id`` as a column."""
    return run_dataset(open_store(run))
