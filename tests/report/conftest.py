"""Runs for the report tests: a real one made by the pipeline, and generated record sets with chosen clocks.

``real_run`` (once per session): ``cam-a`` and ``cam-b`` done (scored on every frame), ``cam-c`` partial
(12 frames committed, no summary), ``cam-d`` failed after committing 8 frames, ``broken`` failed before
committing anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from odist.cli import main
from odist.storage.layout import StreamArea
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.schema import RECORD_SCHEMA, parquet_bytes

COMMON = ["--quiet", "--width", "96", "--height", "64", "--set", "student.width=0.25", "--set", "threads=1"]


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> Path:
    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("report") / "run"
    uri = str(out)
    streams = [("cam-a", "static_easy", ["--evaluate"]),
               ("cam-b", "traffic", ["--evaluate", "--segment-frames", "8"]),
               ("cam-c", "traffic", ["--max-frames", "12", "--segment-frames", "4"]),
               ("cam-d", "static_easy", ["--max-frames", "8", "--segment-frames", "4"])]
    for sid, scenario, extra in streams:
        extra = ["--frames", "20", *extra]
        assert main(["distill", f"synthetic:{scenario}", "--out", uri, "--stream-id", sid, *COMMON, *extra]) == 0
    torch.set_num_threads(threads)
    store = open_store(uri)
    for sid in ("cam-c", "cam-d"):  # as if the worker died before finishing
        store.delete(StreamArea.prefix_of(sid) + "summary.json")
    StreamArea(store, "cam-d").fail("boom: decoder crashed")
    StreamArea(store, "broken").fail("boom: not a video")
    return out


def committed_records(run: Path) -> dict[str, Any]:
    """Stream id -> its records, read straight from the Parquet files its commit records name."""
    out = {}
    for folder in sorted((run / "streams").iterdir()):
        commits = sorted((folder / "commits").glob("*.json")) if (folder / "commits").is_dir() else []
        files = [run / json.loads(c.read_text())["records"] for c in commits]
        if files:
            out[folder.name.split("=", 1)[1]] = {k: np.concatenate([pq.read_table(f).column(k).to_numpy(
                zero_copy_only=False) for f in files]) for k in RECORD_SCHEMA.names}
    return out


def write_stream(store: ObjectStore, sid: str, frames: int, *, start: float = 0.0, fps: float = 30.0,
                 keyframe_every: int = 8, segment: int = 64, seed: int = 0, finish: bool = True,
                 summary: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Commit ``frames`` generated records for ``sid`` (timestamps ``start + i / fps``); returns the columns."""
    rng = np.random.default_rng(seed)
    index = np.arange(frames)
    key = index % keyframe_every == 0
    columns = {
        "frame_index": index, "timestamp": start + index / fps, "keyframe": key,
        "updates": np.where(key, rng.integers(0, 9, frames), 0).astype(np.int32),
        "stride": np.full(frames, keyframe_every, np.int32),
        "keyframe_accuracy": np.where(key, rng.uniform(0.5, 1, frames), np.nan).astype(np.float32),
        "student_seconds": rng.uniform(0.001, 0.01, frames).astype(np.float32),
        "teacher_seconds": np.where(key, 0.3, 0.0).astype(np.float32),
        "miou": rng.uniform(0.3, 0.9, frames).astype(np.float32),
        "miou_foreground": rng.uniform(0.1, 0.8, frames).astype(np.float32),
    }
    area = StreamArea(store, sid)
    for first in range(0, frames, segment):
        last = min(first + segment, frames) - 1
        rows = [{k: v[i].item() for k, v in columns.items()} for i in range(first, last + 1)]
        area.commit_segment(first, last, parquet_bytes(rows, RECORD_SCHEMA), b"masks", b"ckpt")
    if finish:
        area.finish({"stream_id": sid, "frames": frames, **(summary or {})})
    return columns
