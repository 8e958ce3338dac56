"""Keyframe label requests that never block the student: the teacher answers in a background thread."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from odist.models.teachers.base import Teacher, TeacherResult
from odist.video.frame import Frame


@dataclass
class PendingKeyframe:
    """A keyframe sent to the teacher: the frame, the student's prediction made before any label, the answer."""

    frame: Frame
    prediction: np.ndarray
    answer: Future[TeacherResult]
    trigger: str = "ladder"  # why the keyframe was asked for

    def ready(self) -> bool:
        return self.answer.done()


class AsyncLabeler:
    """Sends one keyframe at a time to ``teacher`` (a local model or the shared pool) without waiting."""

    def __init__(self, teacher: Teacher) -> None:
        self.teacher = teacher
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyframe-labels")

    def request(self, frame: Frame, prediction: np.ndarray, trigger: str = "ladder") -> PendingKeyframe:
        """Ask for ``frame``'s labels; returns at once."""
        return PendingKeyframe(frame, prediction, self._executor.submit(self.teacher.label, [frame]), trigger)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
