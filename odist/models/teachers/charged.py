"""Teachers whose labels cost nothing to make here (ground truth, labels read back), charged a configured cost."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from odist.config import TeacherConfig
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.frame import Frame


def charged_result(labels: list[Labels], config: TeacherConfig) -> TeacherResult:
    """A result charged ``config.charged_ms`` and ``config.charged_gflops`` per frame (nothing sleeps)."""
    n = len(labels)
    return TeacherResult(labels=labels, seconds=n * config.charged_ms / 1000.0, gflops=n * config.charged_gflops)


class ChargedTeacher(Teacher):
    """Labels each frame on its own (``label_frame``) and charges ``charged_ms``/``charged_gflops`` per frame."""

    def __init__(self, config: TeacherConfig, class_names: Sequence[str]) -> None:
        super().__init__(class_names)
        self.config = config

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        return charged_result([self.label_frame(frame) for frame in frames], self.config)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return float(self.config.charged_gflops)

    @abstractmethod
    def label_frame(self, frame: Frame) -> Labels:
        """The labels of one frame; a ``TeacherError`` naming it when there are none."""
