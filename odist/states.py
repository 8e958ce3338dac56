"""The status words a run uses, as enums: a stream in a run root, a fleet call's outcome, a live camera.

Each is a ``str`` enum, so it compares equal to, prints as and serialises to its word.
"""

from __future__ import annotations

from enum import Enum


class _Word(str, Enum):
    def __str__(self) -> str:
        return self.value


class StreamState(_Word):
    """A stream in a run root (``odist ls``, the report)."""

    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"
    EMPTY = "empty"
    DAMAGED = "damaged"  # a committed object is missing


class Outcome(_Word):
    """What a fleet worker's call did with a stream."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # already done in the run root


class CameraState(_Word):
    """A live camera's state."""

    STARTING = "starting"
    PENDING = "pending"  # its actor waits for the cluster's resources (a CPU or GPU share)
    CONNECTING = "connecting"
    RUNNING = "running"
    RESTARTING = "restarting"  # its actor does not answer (being restarted)
    STOPPED = "stopped"
    FAILED = "failed"
