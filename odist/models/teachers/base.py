"""The one interface every teacher implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from odist.video.frame import Frame


def empty_boxes() -> np.ndarray:
    return np.zeros((0, 5), dtype=np.float32)


@dataclass(frozen=True)
class Labels:
    """A teacher's answer for one frame.

    ``classes``: HxW uint8 class ids in the stream's class list (0 = background).
    ``boxes``: (N, 5) float32 rows ``class_id, x0, y0, x1, y1`` of the instances behind the map
    (used to weigh foreground pixels in the loss); may be empty.
    """

    classes: np.ndarray
    boxes: np.ndarray = field(default_factory=empty_boxes)


@dataclass(frozen=True)
class TeacherResult:
    """Labels for a batch of frames plus what producing them cost (charged, for simulated teachers)."""

    labels: list[Labels]
    seconds: float
    gflops: float


class Teacher(ABC):
    """Labels keyframes. ``class_names[0]`` is always ``"background"``."""

    name: str = "teacher"

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = tuple(class_names)

    @abstractmethod
    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        """Label ``frames`` (any batch size); raise ``TeacherError`` with the frame index on failure."""

    @abstractmethod
    def gflops_per_frame(self, height: int, width: int) -> float:
        """What labelling one frame of this size costs, in GFLOPs (for the cost ledger)."""

    def seconds_device(self) -> str | None:
        """The device type (``cpu``, ``cuda``) whose wall time ``label``'s ``seconds`` are, in this process;
        None when they are charged (a simulated teacher) or were spent elsewhere (a teacher pool)."""
        return None
