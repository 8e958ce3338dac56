"""The teacher work paid to pretrain the checkpoints a fleet's students began from, counted once per checkpoint.

A pretrain that learned from earlier runs' kept keyframe labels paid nothing new (those labels were paid by
the runs); one that labelled frames itself did, and that work is part of what the fleet cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class PretrainWork:
    """The new teacher work of the distinct pretrained checkpoints the streams began from."""

    checkpoints: int = 0
    teacher_frames: float = 0.0
    teacher_seconds: float = 0.0
    teacher_gflops: float = 0.0

    def totals(self, teacher_hour: float) -> dict[str, float | int]:
        """The report's ``pretrain_*`` totals, the teacher seconds priced at ``teacher_hour``."""
        return {"pretrain_checkpoints": self.checkpoints, "pretrain_teacher_frames": int(self.teacher_frames),
                "pretrain_teacher_seconds": self.teacher_seconds, "pretrain_teacher_gflops": self.teacher_gflops,
                "pretrain_teacher_cost": self.teacher_seconds / 3600.0 * teacher_hour}


def pretrain_work(streams: pa.Table) -> PretrainWork:
    """Sum over the distinct ``init`` checkpoints with a pretrain record (``Collected.streams``' columns)."""
    seen: dict[str, tuple[float, float, float]] = {}
    columns = [streams.column(name).to_pylist() for name in (
        "init", "pretrain_teacher_frames", "pretrain_teacher_seconds", "pretrain_teacher_gflops")]
    for uri, frames, seconds, gflops in zip(*columns, strict=True):
        if uri is not None and frames is not None:
            seen.setdefault(uri, (frames, seconds or 0.0, gflops or 0.0))
    return PretrainWork(len(seen), *(float(sum(v[i] for v in seen.values())) for i in range(3)))
