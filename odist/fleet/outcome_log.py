"""The fleet driver's record of finished streams: one compact row each in a local spool file, counts in memory.

A job of 10,000 streams must not hold 10,000 outcomes (each with its stream's summary) in the driver, so
``OutcomeLog.add`` keeps only the counts and appends the stream's row (id, status, frames, seconds, error,
its accuracy and speed-up when done, its place in the manifest) to an unnamed temporary file; ``rows``
reads them back, in manifest order, once, when the job's summary is written.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

from odist.fleet.progress import FleetCounts
from odist.fleet.results import stream_scores
from odist.fleet.student_actor import StreamOutcome
from odist.states import Outcome


class OutcomeLog:
    """Finished streams: counts in memory, rows on local disk (removed when the log is closed or collected)."""

    def __init__(self) -> None:
        self.counts = FleetCounts()
        # Open for the log's whole life (closed by ``close``): no context manager fits.
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8", prefix="odist-outcomes-")  # noqa: SIM115

    def add(self, outcome: StreamOutcome, position: int) -> None:
        """Count ``outcome`` and spool its row (``position``: the stream's index in the manifest)."""
        counts = self.counts
        counts.frames += outcome.frames
        if outcome.status == Outcome.DONE:
            counts.done += 1
        elif outcome.status == Outcome.SKIPPED:
            counts.skipped += 1
        else:
            counts.failed += 1
        row = {"stream_id": outcome.stream_id, "status": outcome.status, "frames": outcome.frames,
               "seconds": outcome.seconds, "error": outcome.error, "position": position,
               **(stream_scores(outcome.summary) if outcome.status == Outcome.DONE else {})}
        self._file.write(json.dumps(row) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        """Every row, in manifest order (``position`` dropped)."""
        rows = list(self._read())
        rows.sort(key=lambda row: row.pop("position"))
        return rows

    def _read(self) -> Iterator[dict[str, Any]]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield json.loads(line)
        self._file.seek(0, 2)

    def close(self) -> None:
        self._file.close()
