"""Objects over time: per camera, class and minute, what the students' masks counted.

Every frame record carries, by class id, the student's pixel fraction and connected regions
(``odist.distill.class_stats``). The report averages them per stream, class and minute of its clock (from
the stream's start for archives, calendar minutes for live cameras): the mean number of objects per frame,
the most in one frame, and the mean share of the frame, with the class names from each stream's config.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COUNTS_SCHEMA = pa.schema([("run", pa.string()), ("stream_id", pa.string()), ("clock", pa.string()),
                           ("minute_start", pa.float64()), ("class", pa.string()), ("frames", pa.int64()),
                           ("objects_mean", pa.float64()), ("objects_max", pa.int64()), ("pixels_mean", pa.float64())])
WALL_CLOCK = 1e9  # timestamps above this are unix seconds (live cameras)


def per_minute(records: pa.Table) -> pa.Table:
    """``records`` (stream_id, timestamp, class_regions, class_pixels) -> one row per stream, minute and class
    id: frames, mean and max objects per frame, mean pixel share (records without class columns are left out)."""
    records = records.filter(pc.is_valid(records.column("class_regions")))
    if not records.num_rows:
        return pa.table({"stream_id": pa.array([], pa.string()), "minute_start": pa.array([], pa.float64()),
                         "class_id": pa.array([], pa.int64()), "frames": pa.array([], pa.int64()),
                         "objects_mean": pa.array([], pa.float64()), "objects_max": pa.array([], pa.int64()),
                         "pixels_mean": pa.array([], pa.float64())})
    regions, pixels = records.column("class_regions").combine_chunks(), records.column("class_pixels").combine_chunks()
    parent = pc.list_parent_indices(regions)
    offsets = regions.offsets.to_numpy()
    position = np.arange(len(parent)) - offsets[parent.to_numpy()]
    minute = np.floor(records.column("timestamp").to_numpy(zero_copy_only=False) / 60.0) * 60.0
    exploded = pa.table({
        "stream_id": pc.take(records.column("stream_id"), parent),
        "minute_start": pa.array(minute[parent.to_numpy()]),
        "class_id": pa.array(position, pa.int64()),
        "objects": pc.list_flatten(regions).cast(pa.int64()),
        "pixels": pc.list_flatten(pixels).cast(pa.float64()),
    })
    grouped = exploded.group_by(["stream_id", "minute_start", "class_id"]).aggregate(
        [("objects", "count"), ("objects", "mean"), ("objects", "max"), ("pixels", "mean")])
    return grouped.rename_columns([{"objects_count": "frames"}.get(n, n) for n in grouped.column_names])


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
