"""What a fleet job did: ``FleetSummary`` (``RUN/fleet_summary.json``) and the done streams of a run root."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from odist.fleet.outcome_log import OutcomeLog
from odist.fleet.results import results_lines
from odist.states import Outcome
from odist.storage.documents import FLEET_SUMMARY
from odist.storage.layout import done_stream_ids
from odist.storage.objectstore import ObjectStore

__all__ = ["FLEET_SUMMARY", "FleetSummary", "done_stream_ids", "summarise"]


@dataclass
class FleetSummary:
    """What a fleet job did: stream counts, frames processed, wall time, every failure with its error, and per
    stream (``outcomes``) its status and, for a stream finished by the job, its accuracy and speed-up."""

    source: str
    out: str
    streams: int
    done: int
    failed: int
    skipped: int
    frames: int
    wall_seconds: float
    workers: int
    retries: int
    failures: list[dict[str, str]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frames_per_second": self.frames_per_second}

    def describe(self) -> str:
        """A few lines for people: counts, throughput and the failed streams with their errors."""
        lines = [f"fleet: {self.streams} streams: {self.done} done, {self.failed} failed, {self.skipped} skipped "
                 f"(already done) in {self.wall_seconds:.1f} s; {self.frames} frames processed, "
                 f"{self.frames_per_second:.1f} frames/s; {self.workers} workers, {self.retries} retries",
                 f"results: {self.out}"]
        if self.failures:
            width = max(len(f["stream_id"]) for f in self.failures)
            lines.append("failed streams:")
            lines.extend(f"  {f['stream_id']:<{width}}  {f['error']}" for f in self.failures)
        lines.extend(results_lines(self.outcomes, self.out))
        return "\n".join(lines)


def summarise(source: str, store: ObjectStore, streams: int, log: OutcomeLog, wall: float, workers: int,
              retries: int) -> FleetSummary:
    """The fleet summary from the job's outcome log, streams in manifest order."""
    rows = log.rows()
    counts = log.counts
    failures = [{"stream_id": row["stream_id"], "error": row["error"] or ""} for row in rows
                if row["status"] == Outcome.FAILED]
    return FleetSummary(source=source, out=store.uri, streams=streams, done=counts.done, failed=counts.failed,
                        skipped=counts.skipped, frames=counts.frames, wall_seconds=wall, workers=workers,
                        retries=retries, failures=failures, outcomes=rows)
