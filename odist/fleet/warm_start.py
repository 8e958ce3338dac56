"""``--warm-start fleet``: a stream that starts after others have finished begins from a finished student.

The scheme: the latest finished student of the stream's manifest ``group`` (a site, a camera family),
else the latest finished student of the run, else ``--init`` (or fresh weights). "Latest" is finishing
order: a student that finished in this job counts after every one that was done before it started, and
those are ordered by their last commit's time. A stream with its own manifest ``init`` keeps it; a stream
that already has commits resumes from them (its warm start, if any, was taken when it began).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from odist.fleet.manifest import StreamSpec
from odist.storage.layout import StreamArea
from odist.storage.objectstore import ObjectStore

FLEET = "fleet"
SCHEMES = ("none", FLEET)


@dataclass(frozen=True)
class FinishedStudent:
    stream_id: str
    group: str | None
    checkpoint: str  # the URI of the student's last checkpoint (its summary's ``checkpoint``)


class FleetWarmStart:
    """Remembers finished students in finishing order and picks each new stream's warm start."""

    def __init__(self, finished: Iterable[FinishedStudent] = ()) -> None:
        self.finished: list[FinishedStudent] = list(finished)

    @classmethod
    def from_store(cls, store: ObjectStore, done: Iterable[StreamSpec]) -> FleetWarmStart:
        """The students of ``done`` streams (already finished in the run root), oldest first."""
        found = []
        for spec in done:
            area = StreamArea(store, spec.stream_id)
            checkpoint = (area.summary() or {}).get("checkpoint")
            last = area.last_commit()
            if checkpoint and last is not None:
                found.append((last.created_unix, FinishedStudent(spec.stream_id, spec.group, checkpoint)))
        return cls(student for _, student in sorted(found, key=lambda pair: pair[0]))

    def finished_stream(self, spec: StreamSpec, summary: dict | None) -> None:
        """Note a stream that finished; its last checkpoint becomes the newest fleet student."""
        checkpoint = (summary or {}).get("checkpoint")
        if checkpoint:
            self.finished.append(FinishedStudent(spec.stream_id, spec.group, checkpoint))

    def pick(self, spec: StreamSpec) -> FinishedStudent | None:
        """The latest finished student of ``spec``'s group, else the latest finished student, else None."""
        same_group = [s for s in self.finished if spec.group is not None and s.group == spec.group]
        candidates = same_group or self.finished
        return candidates[-1] if candidates else None

    def apply(self, spec: StreamSpec) -> StreamSpec:
        """``spec`` starting from ``pick``'s student, unless the manifest gave it its own ``init``."""
        if spec.init is not None:
            return spec
        chosen = self.pick(spec)
        if chosen is None:
            return spec
        return dataclasses.replace(spec, init=chosen.checkpoint, init_from=f"{FLEET}:{chosen.stream_id}")
