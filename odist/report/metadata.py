"""Per-stream documents of a run (``summary.json``, ``failed.json``, ``stream.json``, ``live.json``) as one table.

One listing of the run's ``streams/`` folder says which documents each stream has; only those are read,
in parallel threads (object-store reads are latency-bound).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from odist.errors import StorageError
from odist.storage.documents import FAILED, LIVE_STATUS, STREAM_MANIFEST, SUMMARY, read_document
from odist.storage.layout import StreamArea
from odist.storage.objectstore import ObjectStore
from odist.storage.schema import SCHEMA_VERSION

CLASS_SEPARATOR = "\x1f"
META_SCHEMA = pa.schema([
    ("stream_id", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("config_device", pa.string()),
    ("source_fps", pa.float64()),
    ("cost_teacher_ms", pa.float64()),
    ("cost_student_inference_ms", pa.float64()),
    ("cost_student_update_ms", pa.float64()),
    ("teacher_gflops", pa.float64()),
    ("student_gflops", pa.float64()),
    ("teacher_gflops_per_frame", pa.float64()),
    ("evaluation_teacher_seconds", pa.float64()),
    # What the measured speed-up charged each teacher frame: the teacher's cost on the student's device
    # (summary.json's teacher_cost_here), and where that figure came from, in words.
    ("teacher_seconds_here", pa.float64()),
    ("teacher_cost_here", pa.string()),
    ("miou", pa.float64()),  # the stream's IoU from its accumulated confusion matrix (summary.json)
    ("miou_foreground", pa.float64()),
    ("dropped_frames", pa.int64()),
    ("classes", pa.string()),  # the stream's class names by id (stream.json), joined by CLASS_SEPARATOR
    ("init", pa.string()),  # the checkpoint the student began from (stream.json), if any
    ("pretrain_teacher_frames", pa.float64()),  # the teacher work that checkpoint's pretrain paid
    ("pretrain_teacher_seconds", pa.float64()),
    ("pretrain_teacher_gflops", pa.float64()),
])
# The paper's cost model (odist.config.CostModelConfig) for streams whose stream.json is missing.
DEFAULT_COST_MODEL = {"teacher_ms": 300.0, "student_inference_ms": 7.0, "student_update_ms": 30.0}


def read_metadata(store: ObjectStore, files: dict[str, set[str]], threads: int = 16) -> pa.Table:
    """One row per stream: status, failure text and the figures only its documents hold (``files``: what each
    stream's folder holds, ``odist.storage.layout.stream_folders``)."""
    ids = sorted(files)
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(ids)))) as pool:
        rows = list(pool.map(lambda sid: _stream_row(store, sid, files[sid]), ids))
    return pa.Table.from_pylist(rows, schema=META_SCHEMA)


def _stream_row(store: ObjectStore, sid: str, names: set[str]) -> dict[str, Any]:
    prefix = StreamArea.prefix_of(sid)
    summary = _document(store, prefix + SUMMARY) if SUMMARY in names else None
    failure = _document(store, prefix + FAILED) if FAILED in names and summary is None else None
    manifest = _document(store, prefix + STREAM_MANIFEST) if STREAM_MANIFEST in names else None
    # A live camera that has not stopped has no summary yet; its last status snapshot counts its drops.
    live = _document(store, prefix + LIVE_STATUS) if LIVE_STATUS in names and summary is None else None
    if summary is not None:
        _check_version(store, prefix + SUMMARY, summary)
        status = "done"
    elif failure is not None:
        status = "failed"
    else:
        status = "partial" if "commits" in names else "empty"
    row = {"stream_id": sid, "status": status,
           "error": None if failure is None else str(failure.get("error", "unknown error")),
           **_manifest_figures(manifest), **_summary_figures(summary)}
    if live is not None:
        row["dropped_frames"] = _count(live.get("dropped"))
    return row


def _document(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """The document the listing showed (None if it went since); one that is not a JSON object is an error."""
    return read_document(store, key, "restore it from a backup, or delete it if it is not odist's")


def _check_version(store: ObjectStore, key: str, document: dict[str, Any]) -> None:
    version = document.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise StorageError(f"{store.url(key)} has schema version {version!r}",
                           f"this odist reads up to {SCHEMA_VERSION}; upgrade odist")


def _manifest_figures(manifest: dict[str, Any] | None) -> dict[str, Any]:
    config = (manifest or {}).get("config") or {}
    cost = {**DEFAULT_COST_MODEL, **(config.get("cost_model") or {})}
    classes = config.get("classes")
    return {**_init_figures(manifest), "config_device": _text(config.get("device")),
            "classes": CLASS_SEPARATOR.join(map(str, classes)) if isinstance(classes, list) else None,
            "source_fps": _number(((manifest or {}).get("source") or {}).get("fps")),
            "cost_teacher_ms": _number(cost["teacher_ms"]),
            "cost_student_inference_ms": _number(cost["student_inference_ms"]),
            "cost_student_update_ms": _number(cost["student_update_ms"])}


def _init_figures(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """The checkpoint a warm-started stream began from, and the teacher work its pretrain paid (if one did)."""
    init = (manifest or {}).get("init")
    if not isinstance(init, dict):
        return {}
    teacher = (init.get("pretrain") or {}).get("teacher") if isinstance(init.get("pretrain"), dict) else None
    teacher = teacher if isinstance(teacher, dict) else {}
    return {"init": _text(init.get("uri")), "pretrain_teacher_frames": _number(teacher.get("frames")),
            "pretrain_teacher_seconds": _number(teacher.get("seconds")),
            "pretrain_teacher_gflops": _number(teacher.get("gflops"))}


def _summary_figures(summary: dict[str, Any] | None) -> dict[str, Any]:
    if summary is None:
        return {"dropped_frames": 0}
    ledger = summary.get("ledger") or {}
    student = _number(ledger.get("student_inference_gflops"))
    update = _number(ledger.get("student_update_gflops"))
    return {"teacher_gflops": _number(ledger.get("teacher_gflops")),
            "student_gflops": None if student is None or update is None else student + update,
            "teacher_gflops_per_frame": _number(summary.get("teacher_gflops_per_frame")),
            "evaluation_teacher_seconds": _number(ledger.get("evaluation_teacher_seconds")),
            **_teacher_here(summary.get("teacher_cost_here")),
            "miou": _number(summary.get("miou")), "miou_foreground": _number(summary.get("miou_foreground")),
            "dropped_frames": _count(summary.get("dropped_frames"))}


def _teacher_here(cost: Any) -> dict[str, Any]:
    """The teacher's per-frame cost on the student's device and its origin, from ``summary.json`` (absent in
    summaries written before odist recorded it: the measured speed-up is then not shown)."""
    if not isinstance(cost, dict):
        return {}
    return {"teacher_seconds_here": _number(cost.get("seconds_per_frame")),
            "teacher_cost_here": _text(cost.get("description"))}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int:
    """A non-negative count from a document; 0 when absent or not a number."""
    number = _number(value)
    return 0 if number is None else max(int(number), 0)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
