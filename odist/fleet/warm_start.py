"""``--warm-start fleet``: a stream that starts after others have finished begins from a finished student.

The scheme: the latest finished student of the stream's manifest ``group`` (a site, a camera family),
else the latest finished student of the run, else ``--init`` (or fresh weights). ``fleet-average`` begins
from the mean of the weights of the latest ``AVERAGED`` finished students of the group (else of the run),
written once as a checkpoint in the run root (``odist.fleet.weight_average``). "Latest" is finishing
order: a student that finished in this job counts after every one that was done before it started, and
those are ordered by their last commit's time. A stream with its own manifest ``init`` keeps it; a stream
that already has commits resumes from them (its warm start, if any, was taken when it began).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from odist.storage.layout import StreamArea
from odist.storage.objectstore import ObjectStore
from odist.video.manifest import StreamSpec

FLEET = "fleet"
AVERAGE = "fleet-average"
SCHEMES = ("none", FLEET, AVERAGE)
AVERAGED = 8  # students in a fleet-average: the latest of the group


@dataclass(frozen=True)
class FinishedStudent:
    stream_id: str
    group: str | None
    checkpoint: str  # the URI of the student's last checkpoint (its summary's ``checkpoint``)


class FleetWarmStart:
    """Remembers finished students in finishing order and picks each new stream's warm start."""

    def __init__(self, finished: Iterable[FinishedStudent] = (), *, average: tuple[ObjectStore, dict] | None = None
                 ) -> None:
        """``average``: (run store, the streams' config dict) to begin from averaged students instead."""
        self.finished: list[FinishedStudent] = list(finished)
        self.average = average

    @classmethod
    def from_store(cls, store: ObjectStore, done: Iterable[StreamSpec], *,
                   average_config: dict[str, Any] | None = None) -> FleetWarmStart:
        """The students of ``done`` streams (already finished in the run root), oldest first; with
        ``average_config`` (the streams' config dict) the warm starts are averages (``fleet-average``)."""
        found = []
        for spec in done:
            area = StreamArea(store, spec.stream_id)
            checkpoint = (area.summary() or {}).get("checkpoint")
            last = area.last_commit()
            if checkpoint and last is not None:
                found.append((last.created_unix, FinishedStudent(spec.stream_id, spec.group, checkpoint)))
        return cls((student for _, student in sorted(found, key=lambda pair: pair[0])),
                   average=None if average_config is None else (store, average_config))

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

    def pick_average(self, spec: StreamSpec) -> list[FinishedStudent]:
        """The latest ``AVERAGED`` finished students of ``spec``'s group, else of the run, oldest first."""
        same_group = [s for s in self.finished if spec.group is not None and s.group == spec.group]
        return (same_group or self.finished)[-AVERAGED:]

    def apply(self, spec: StreamSpec) -> StreamSpec:
        """``spec`` starting from ``pick``'s student (or the average of ``pick_average``'s), unless the
        manifest gave it its own ``init``."""
        if spec.init is not None:
            return spec
        if self.average is not None:
            return self._apply_average(spec)
        chosen = self.pick(spec)
        if chosen is None:
            return spec
        return dataclasses.replace(spec, init=chosen.checkpoint, init_from=f"{FLEET}:{chosen.stream_id}")

    def _apply_average(self, spec: StreamSpec) -> StreamSpec:
        chosen = self.pick_average(spec)
        if not chosen:
            return spec
        from odist.fleet.weight_average import write_average  # torch, so only when averaging

        store, config_dict = self.average
        written = write_average(store, [s.checkpoint for s in chosen], config_dict)
        if written is None:
            return spec
        uri, used = written
        names = ",".join(s.stream_id for s in chosen if s.checkpoint in used)
        return dataclasses.replace(spec, init=uri, init_from=f"{AVERAGE}:{names}")
