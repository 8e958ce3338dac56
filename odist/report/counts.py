"""Objects over time: per camera, class and minute, what the students' masks counted.

Every frame record carries, by class id, the student's pixel fraction and connected regions
(``odist.distill.class_stats``). The report averages them per stream, class and minute of its clock (from
the stream's start for archives, calendar minutes for live cameras): the mean number of objects per frame,
the most in one frame, and the mean share of the frame, with the class names from each stream's config.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from odist.report.figures import WALL_CLOCK

COUNTS_SCHEMA = pa.schema([("run", pa.string()), ("stream_id", pa.string()), ("clock", pa.string()),
                           ("minute_start", pa.float64()), ("class", pa.string()), ("frames", pa.int64()),
                           ("objects_mean", pa.float64()), ("objects_max", pa.int64()), ("pixels_mean", pa.float64())])


def per_minute(batches: Iterable[pa.RecordBatch]) -> pa.Table:
    """Record ``batches`` (stream_id, timestamp, class_regions, class_pixels) -> one row per stream, minute and
    class id: frames, mean and max objects per frame, mean pixel share (records without class columns are left
    out). Each batch is reduced on its own, so memory follows the batch and the number of groups, not the run."""
    parts = [_sums(pa.Table.from_batches([batch])) for batch in batches if batch.num_rows]
    parts = [part for part in parts if part.num_rows]
    if not parts:
        return _EMPTY_PER_MINUTE
    summed = pa.concat_tables(parts).group_by(["stream_id", "minute_start", "class_id"]).aggregate(
        [("frames", "sum"), ("objects_sum", "sum"), ("objects_max", "max"), ("pixels_sum", "sum")])
    frames = summed.column("frames_sum")
    return pa.table({
        "stream_id": summed.column("stream_id"), "minute_start": summed.column("minute_start"),
        "class_id": summed.column("class_id"), "frames": frames,
        "objects_mean": pc.divide(summed.column("objects_sum_sum"), pc.cast(frames, pa.float64())),
        "objects_max": summed.column("objects_max_max"),
        "pixels_mean": pc.divide(summed.column("pixels_sum_sum"), pc.cast(frames, pa.float64())),
    })


def _sums(records: pa.Table) -> pa.Table:
    """One batch's frames, sums and maxima per stream, minute and class id, grouped with integer keys in NumPy
    (never one string per frame and class)."""
    records = records.filter(pc.is_valid(records.column("class_regions")))
    if not records.num_rows:
        return _EMPTY_SUMS
    regions = records.column("class_regions").combine_chunks()
    pixels = records.column("class_pixels").combine_chunks()
    lengths = pc.list_value_length(regions).to_numpy(zero_copy_only=False).astype(np.int64)
    row = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    class_id = np.arange(len(row), dtype=np.int64) - np.repeat(starts, lengths)
    streams = pc.dictionary_encode(records.column("stream_id").combine_chunks())
    stream_code = streams.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    minutes, minute_code = np.unique(np.floor(records.column("timestamp").to_numpy(zero_copy_only=False) / 60.0),
                                     return_inverse=True)
    width = int(lengths.max()) if len(lengths) else 1
    key = (stream_code[row] * len(minutes) + minute_code[row]) * width + class_id
    del row, class_id
    groups, group = np.unique(key, return_inverse=True)
    del key
    objects = pc.list_flatten(regions).to_numpy(zero_copy_only=False).astype(np.float64)
    shares = pc.list_flatten(pixels).to_numpy(zero_copy_only=False).astype(np.float64)
    frames = np.bincount(group, minlength=len(groups))
    most = np.zeros(len(groups), np.float64)
    np.maximum.at(most, group, objects)
    class_of, rest = groups % width, groups // width
    return pa.table({
        "stream_id": pc.take(streams.dictionary, pa.array(rest // len(minutes))),
        "minute_start": pa.array(minutes[rest % len(minutes)] * 60.0),
        "class_id": pa.array(class_of),
        "frames": pa.array(frames.astype(np.int64)),
        "objects_sum": pa.array(np.bincount(group, weights=objects, minlength=len(groups))),
        "objects_max": pa.array(most.astype(np.int64)),
        "pixels_sum": pa.array(np.bincount(group, weights=shares, minlength=len(groups))),
    })


_EMPTY_SUMS = pa.table({"stream_id": pa.array([], pa.string()), "minute_start": pa.array([], pa.float64()),
                        "class_id": pa.array([], pa.int64()), "frames": pa.array([], pa.int64()),
                        "objects_sum": pa.array([], pa.float64()), "objects_max": pa.array([], pa.int64()),
                        "pixels_sum": pa.array([], pa.float64())})
_EMPTY_PER_MINUTE = pa.table({"stream_id": pa.array([], pa.string()), "minute_start": pa.array([], pa.float64()),
                              "class_id": pa.array([], pa.int64()), "frames": pa.array([], pa.int64()),
                              "objects_mean": pa.array([], pa.float64()), "objects_max": pa.array([], pa.int64()),
                              "pixels_mean": pa.array([], pa.float64())})


def named(counts: pa.Table, classes: dict[tuple[str, str], list[str]]) -> pa.Table:
    """``counts`` of every run (with ``run``), their class ids named from each (run, stream)'s ``classes`` (the
    background left out), in the order the report shows them."""
    rows = []
    for row in counts.to_pylist():
        names = classes.get((row["run"], row["stream_id"])) or []
        if row["class_id"] == 0:
            continue
        name = names[row["class_id"]] if row["class_id"] < len(names) else f"class {row['class_id']}"
        rows.append({"run": row["run"], "stream_id": row["stream_id"],
                     "clock": "utc" if row["minute_start"] > WALL_CLOCK else "stream",
                     "minute_start": row["minute_start"], "class": name, "frames": row["frames"],
                     "objects_mean": row["objects_mean"], "objects_max": row["objects_max"],
                     "pixels_mean": row["pixels_mean"]})
    table = pa.Table.from_pylist(rows, schema=COUNTS_SCHEMA)
    return table.sort_by([("run", "ascending"), ("stream_id", "ascending"), ("minute_start", "ascending"),
                          ("class", "ascending")])
