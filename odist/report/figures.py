"""Per-camera and fleet figures: video hours, keyframe rate, device time, speed-ups, accuracy, money.

Every per-stream figure is computed column-wise (numpy over the aggregated Arrow columns). The fleet's
totals are sums and ratios of sums; accuracy spread (std, p10, p90) is over cameras with scored frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from odist.report.pretrain import PretrainWork
from odist.report.prices import Prices

WALL_CLOCK = 1e9  # timestamps above this are unix seconds (live cameras), below it seconds from the start
STATUSES = ("done", "partial", "failed", "empty")
# The per-stream columns of every report output, in order.
STREAM_COLUMNS = (
    "run", "stream_id", "status", "error", "frames", "next_frame", "dropped_frames", "clock", "start_time", "fps",
    "hours", "keyframes", "keyframe_rate", "updates", "teacher_device", "teacher_seconds", "student_device",
    "student_seconds", "teacher_gflops", "student_gflops", "speedup_measured", "teacher_seconds_here",
    "teacher_cost_here", "speedup_cost_model", "speedup_flops", "evaluated_frames", "miou", "miou_foreground",
    "frame_miou", "frame_miou_foreground", "evaluation_teacher_seconds",
    "teacher_cost", "student_cost", "cost", "cost_per_camera_hour",
)


def column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls."""
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def stream_figures(streams: pa.Table, prices: Prices) -> pa.Table:
    """One row per stream with the ``STREAM_COLUMNS``, from ``Collected.streams``."""
    frames = np.nan_to_num(column(streams, "frames"))
    keyframes = np.nan_to_num(column(streams, "keyframes"))
    updates = np.nan_to_num(column(streams, "updates"))
    teacher_s = np.nan_to_num(column(streams, "teacher_seconds"))
    student_s = np.nan_to_num(column(streams, "student_seconds"))
    fps = _fps(streams)
    hours = _ratio(frames, fps) / 3600.0
    teacher_device, teacher_hour = prices.teacher_rate()
    student = [prices.student_rate(d) for d in streams.column("config_device").to_pylist()]
    student_hour = np.array([rate for _, rate in student], dtype=np.float64)
    teacher_cost = teacher_s / 3600.0 * teacher_hour
    student_cost = student_s / 3600.0 * student_hour
    cost = teacher_cost + student_cost
    start = column(streams, "first_timestamp")
    # The measured speed-up: the student's measured seconds, each keyframe at the teacher's cost on the
    # student's device (its own time if it ran there, else the configured Mask R-CNN's; finished streams).
    here = column(streams, "teacher_seconds_here")
    values: dict[str, Any] = {
        "run": streams.column("run"), "stream_id": streams.column("stream_id"), "status": streams.column("status"),
        "error": streams.column("error"), "frames": frames.astype(np.int64),
        "next_frame": (np.nan_to_num(column(streams, "last_frame"), nan=-1.0) + 1).astype(np.int64),
        "dropped_frames": streams.column("dropped_frames"),
        "clock": np.where(start > WALL_CLOCK, "utc", "stream"), "start_time": start, "fps": fps, "hours": hours,
        "keyframes": keyframes.astype(np.int64), "keyframe_rate": _ratio(keyframes, frames),
        "updates": updates.astype(np.int64), "teacher_device": [teacher_device] * streams.num_rows,
        "teacher_seconds": teacher_s, "student_device": [device for device, _ in student],
        "student_seconds": student_s, "teacher_gflops": column(streams, "teacher_gflops"),
        "student_gflops": column(streams, "student_gflops"),
        "speedup_measured": _ratio(frames * here, student_s + keyframes * here),
        "teacher_seconds_here": here, "teacher_cost_here": streams.column("teacher_cost_here"),
        "speedup_cost_model": _ratio(frames * column(streams, "cost_teacher_ms"), _cost_model_spent(streams)),
        "speedup_flops": _ratio(frames * column(streams, "teacher_gflops_per_frame"), _gflops_spent(streams)),
        "evaluated_frames": np.nan_to_num(column(streams, "evaluated_frames")).astype(np.int64),
        "miou": column(streams, "miou"), "miou_foreground": column(streams, "miou_foreground"),
        "frame_miou": column(streams, "frame_miou"), "frame_miou_foreground": column(streams, "frame_miou_foreground"),
        "evaluation_teacher_seconds": column(streams, "evaluation_teacher_seconds"),
        "teacher_cost": teacher_cost, "student_cost": student_cost, "cost": cost,
        "cost_per_camera_hour": _ratio(cost, hours),
    }
    return pa.table({name: _arrow(values[name]) for name in STREAM_COLUMNS})


def _arrow(value: Any) -> pa.Array | pa.ChunkedArray:
    """NaN floats become nulls, so Parquet/CSV show missing figures as missing."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return pa.array(value, pa.float64(), from_pandas=True)
    return value if isinstance(value, (pa.Array, pa.ChunkedArray)) else pa.array(value)


def _fps(streams: pa.Table) -> np.ndarray:
    """Frame rate from the first and last committed timestamps; else the source's, from ``stream.json``."""
    span = column(streams, "last_timestamp") - column(streams, "first_timestamp")
    steps = column(streams, "last_frame") - column(streams, "first_frame")
    measured = _ratio(steps, np.where(steps > 0, span, np.nan))
    return np.where(np.isfinite(measured) & (measured > 0), measured, column(streams, "source_fps"))


def _cost_model_spent(streams: pa.Table) -> np.ndarray:
    """(N-K)*S + K*T + U*U_cost in ms: the paper's cost model of what the stream spent."""
    n, k, u = (np.nan_to_num(column(streams, c)) for c in ("frames", "keyframes", "updates"))
    return ((n - k) * column(streams, "cost_student_inference_ms") + k * column(streams, "cost_teacher_ms")
            + u * column(streams, "cost_student_update_ms"))


def _gflops_spent(streams: pa.Table) -> np.ndarray:
    return column(streams, "teacher_gflops") + column(streams, "student_gflops")


def fleet_totals(figures: pa.Table, prices: Prices, runs: list[str],
                 pretrain: PretrainWork | None = None) -> dict[str, Any]:
    """The fleet's totals, ratios of sums and accuracy spread, from ``stream_figures``' table.

    The teacher work of ``pretrain`` (the checkpoints the students began from) is part of the fleet's cost
    and of what its speed-ups divide by; ``teacher_cost`` and ``student_cost`` are the streams' own.
    """
    pretrain = pretrain or PretrainWork()
    extra = pretrain.totals(prices.teacher_rate()[1])
    col = {name: column(figures, name) for name in (
        "frames", "hours", "keyframes", "updates", "teacher_seconds", "student_seconds", "teacher_gflops",
        "student_gflops", "teacher_cost", "student_cost", "cost", "dropped_frames")}
    statuses = figures.column("status").to_pylist()
    frames, hours = col["frames"].sum(), np.nansum(col["hours"])
    cost = col["cost"].sum() + extra["pretrain_teacher_cost"]
    totals: dict[str, Any] = {
        "runs": len(runs), "streams": figures.num_rows,
        **{status: statuses.count(status) for status in STATUSES},
        "frames": int(frames), "dropped_frames": int(col["dropped_frames"].sum()), "hours": float(hours),
        "keyframes": int(col["keyframes"].sum()), "keyframe_rate": _safe(col["keyframes"].sum(), frames),
        "updates": int(col["updates"].sum()),
        "teacher_seconds": float(col["teacher_seconds"].sum()), "student_seconds": float(col["student_seconds"].sum()),
        "teacher_gflops": float(np.nansum(col["teacher_gflops"])),
        "student_gflops": float(np.nansum(col["student_gflops"])),
        **_fleet_speedups(figures, pretrain), "teacher_costs_here": teacher_costs_here(figures),
        **_spread(figures, "miou"), **_spread(figures, "miou_foreground"), **_spread(figures, "frame_miou"),
        "teacher_cost": float(col["teacher_cost"].sum()), "student_cost": float(col["student_cost"].sum()),
        **extra, "cost": float(cost),
        "cost_per_camera_hour": _safe(np.nansum(np.where(col["hours"] > 0, col["cost"], 0))
                                      + extra["pretrain_teacher_cost"], hours),
        "currency": prices.currency, "gpu_hour": prices.gpu_hour, "cpu_hour": prices.cpu_hour,
    }
    return totals


def teacher_costs_here(figures: pa.Table) -> str:
    """Each teacher figure the measured speed-ups charged (``teacher_cost_here``) with its number of streams,
    ``teacher 9 s/frame on cpu (cached in F) (3 streams); n/a (1 stream)``; ``n/a``: streams without one
    (unfinished, or written by an older odist)."""
    counts: dict[str, int] = {}
    for text in figures.column("teacher_cost_here").to_pylist():
        key = text or "n/a"
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # the most streams first
    return "; ".join(f"{text} ({n} stream{'s' if n != 1 else ''})" for text, n in ordered) or "n/a"


def _safe(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def _fleet_speedups(figures: pa.Table, pretrain: PretrainWork) -> dict[str, float]:
    """Speed-ups of the whole fleet: the streams' teacher-every-frame baselines over what they and the
    pretrain of their checkpoints spent (the pretrain's teacher frames, for the measured speed-up, at the
    streams' mean teacher cost on their devices, weighted by keyframes)."""
    keyframes, here = column(figures, "keyframes"), column(figures, "teacher_seconds_here")
    known = np.isfinite(here) & (keyframes > 0)
    mean_here = _safe(float((keyframes[known] * here[known]).sum()), float(keyframes[known].sum()))
    pretrain_here = pretrain.teacher_frames * mean_here if pretrain.teacher_frames else 0.0
    also_spent = {"speedup_measured": pretrain_here, "speedup_flops": pretrain.teacher_gflops,
                  "speedup_cost_model": pretrain.teacher_frames}  # in teacher-frame units
    out = {}
    for name in ("speedup_measured", "speedup_cost_model", "speedup_flops"):
        speedup = column(figures, name)
        spent = _spent(figures, name)
        ok = np.isfinite(speedup) & np.isfinite(spent) & (spent > 0)
        out[name] = _safe(float((speedup[ok] * spent[ok]).sum()), float(spent[ok].sum()) + also_spent[name])
    return out


def _spent(figures: pa.Table, name: str) -> np.ndarray:
    """What a stream spent in the units its speed-up divides by (seconds, cost-model frames, GFLOPs)."""
    if name == "speedup_flops":
        return column(figures, "teacher_gflops") + column(figures, "student_gflops")
    if name == "speedup_measured":
        return column(figures, "keyframes") * column(figures, "teacher_seconds_here") + column(figures,
                                                                                              "student_seconds")
    # In teacher-frame units: the baseline is N frames of teacher time, the spend (N-K)*S/T + K + U*U_cost/T.
    return column(figures, "frames") / column(figures, "speedup_cost_model")


def _spread(figures: pa.Table, name: str) -> dict[str, float | int]:
    values = column(figures, name)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {f"{name}_cameras": 0, f"{name}_mean": float("nan"), f"{name}_std": float("nan"),
                f"{name}_p10": float("nan"), f"{name}_p90": float("nan")}
    p10, p90 = np.percentile(values, [10, 90])
    return {f"{name}_cameras": int(values.size), f"{name}_mean": float(values.mean()),
            f"{name}_std": float(values.std()), f"{name}_p10": float(p10), f"{name}_p90": float(p90)}
