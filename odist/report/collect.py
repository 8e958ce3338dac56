"""Everything a report needs from one or more runs, aggregated in Arrow.

Every committed record of every stream is scanned once through ``run_dataset`` and reduced with
``group_by`` to one row per stream and one row per stream and whole second of ``timestamp``; the raw
records are dropped afterwards, so memory follows the number of streams and seconds, not frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from odist.errors import StorageError
from odist.report.counts import per_minute
from odist.report.metadata import read_metadata
from odist.storage.documents import is_run
from odist.storage.integrity import require_run_complete
from odist.storage.layout import stream_folders
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.reader import run_dataset
from odist.storage.schema import SCHEMA_VERSION

VERSION_SAMPLE = 16
_STREAM_AGGREGATES = [
    ("frame_index", "count", "frames"), ("frame_index", "min", "first_frame"), ("frame_index", "max", "last_frame"),
    ("timestamp", "min", "first_timestamp"), ("timestamp", "max", "last_timestamp"),
    ("keyframe", "sum", "keyframes"), ("updates", "sum", "updates"),
    ("student_seconds", "sum", "student_seconds"), ("teacher_seconds", "sum", "teacher_seconds"),
    ("miou", "count", "evaluated_frames"), ("miou", "mean", "frame_miou"),
    ("miou_foreground", "mean", "frame_miou_foreground"),
]
_SECOND_AGGREGATES = [
    ("frame_index", "count", "frames"), ("keyframe", "sum", "keyframes"),
    ("student_seconds", "sum", "student_seconds"), ("teacher_seconds", "sum", "teacher_seconds"),
]


@dataclass(frozen=True)
class Collected:
    """Per-stream rows (records aggregated and joined with the stream's documents), per-second rows and per
    stream, minute and class id the objects the students counted (``counts.per_minute``)."""

    runs: list[str]
    streams: pa.Table
    seconds: pa.Table
    counts: pa.Table


def collect(run_uris: list[str]) -> Collected:
    """Aggregate every run in ``run_uris``; the tables carry a ``run`` column (the run's URI)."""
    streams, seconds, counts, names = [], [], [], []
    for uri in run_uris:
        store = open_store(uri)
        run_streams, run_seconds, run_counts = collect_run(store)
        streams.append(_with_run(run_streams, store.uri))
        seconds.append(_with_run(run_seconds, store.uri))
        counts.append(_with_run(run_counts, store.uri))
        names.append(store.uri)
    return Collected(names, pa.concat_tables(streams), pa.concat_tables(seconds), pa.concat_tables(counts))


def collect_run(store: ObjectStore) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(per-stream table, per-stream-and-second table, per-stream-minute-and-class counts) of one run; a run
    without streams is an error."""
    files = stream_folders(store)
    if not files:
        hint = "pass the --out of an odist run" if not is_run(store) else "no stream has started yet"
        raise StorageError(f"{store.uri} holds no odist streams", hint)
    require_run_complete(store, files)  # a missing committed object is one line, not a reader's traceback
    dataset = run_dataset(store)
    check_record_versions(dataset, store)
    records = _scan(dataset, store)
    per_stream = _aggregate(records, ["stream_id"], _STREAM_AGGREGATES)
    per_second = _aggregate(records, ["stream_id", "second"], _SECOND_AGGREGATES)
    del records
    counts = per_minute(dataset.to_batches(columns=["stream_id", "timestamp", "class_regions", "class_pixels"]))
    meta = read_metadata(store, files)
    joined = meta.join(per_stream, keys="stream_id", join_type="left outer").sort_by("stream_id")
    return joined, per_second, counts


def check_record_versions(dataset: ds.FileSystemDataset, store: ObjectStore) -> None:
    """Refuse records written by a newer odist: reads the Parquet footer of an even sample of the files.

    Every commit record is version-checked when the dataset is built; this catches records whose own
    schema metadata is newer, without opening every footer of a large run.
    """
    files = list(dataset.files)
    step = max(1, len(files) // VERSION_SAMPLE)
    sample = sorted(set(files[::step]) | set(files[-1:]))
    for path in sample:
        try:
            metadata = pq.read_schema(path, filesystem=dataset.filesystem).metadata or {}
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"committed records {path} are not readable Parquet: {exc}",
                               "restore the object, or delete the stream's commits after it and resume") from None
        version = metadata.get(b"odist_schema_version", b"1").decode()
        if not version.isdigit() or int(version) > SCHEMA_VERSION:
            raise StorageError(f"records in {store.uri} ({path}) have schema version {version}",
                               f"this odist reads up to {SCHEMA_VERSION}; upgrade odist")


def _scan(dataset: ds.Dataset, store: ObjectStore) -> pa.Table:
    """The columns the report uses; NaN scores become nulls so means skip unscored frames."""
    field = ds.field

    def score(name: str) -> ds.Expression:
        value = field(name).cast(pa.float64())
        return pc.if_else(pc.is_nan(value), pa.scalar(None, pa.float64()), value)

    columns = {
        "stream_id": field("stream_id"), "frame_index": field("frame_index"), "timestamp": field("timestamp"),
        "second": pc.floor(field("timestamp")), "keyframe": field("keyframe").cast(pa.int64()),
        "updates": field("updates").cast(pa.int64()),
        "student_seconds": field("student_seconds").cast(pa.float64()),
        "teacher_seconds": field("teacher_seconds").cast(pa.float64()),
        "miou": score("miou"), "miou_foreground": score("miou_foreground"),
    }
    try:
        return dataset.to_table(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read the committed records of {store.uri}: {exc}",
                           "restore the object it names, or delete the stream's commits after it and resume") from None


def _aggregate(table: pa.Table, keys: list[str], aggregates: list[tuple[str, str, str]]) -> pa.Table:
    grouped = table.group_by(keys, use_threads=True).aggregate([(column, how) for column, how, _ in aggregates])
    names = {f"{column}_{how}": name for column, how, name in aggregates}
    return grouped.rename_columns([names.get(name, name) for name in grouped.column_names])


def _with_run(table: pa.Table, uri: str) -> pa.Table:
    return table.add_column(0, "run", pa.array([uri] * table.num_rows, pa.string()))
