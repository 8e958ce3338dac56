"""Keyframes whose labels are awaited in the background while the student keeps inferring.

``OverlappedKeyframes.step`` runs the student on every frame. When the ladder asks for a keyframe, the
frame goes to the teacher without waiting; when the labels are back (some frames later), the prediction
the student made for that frame before seeing them is scored (a fair running mIoU vs teacher), and the
updates run one step per following frame, so no frame waits on more than one update; then the ladder
moves. A cut while the student still learns asks for the new scene's labels at once. Live cameras
always work this way; archive streams do with ``distill.overlap_labels``.
A teacher error is counted and the ladder asks again at the next frame.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from odist.distill.distiller import FrameResult, KeyframeLearning, OnlineDistiller
from odist.distill.metrics import ConfusionMeter, confusion, mean_iou
from odist.distill.policy import Trigger
from odist.errors import TeacherError
from odist.models.teachers.base import Teacher, TeacherResult
from odist.video.frame import Frame

log = logging.getLogger(__name__)


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
    """Sends one keyframe at a time to ``teacher`` (a local model or the shared pool) in a background thread."""

    def __init__(self, teacher: Teacher) -> None:
        self.teacher = teacher
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyframe-labels")

    def request(self, frame: Frame, prediction: np.ndarray, trigger: str = "ladder") -> PendingKeyframe:
        """Ask for ``frame``'s labels; returns at once."""
        return PendingKeyframe(frame, prediction, self._executor.submit(self.teacher.label, [frame]), trigger)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Learned:
    """A keyframe whose learning finished: its result and the scores of the prediction made before its labels."""

    result: FrameResult
    miou: float
    miou_foreground: float


class OverlappedKeyframes:
    """Drives a distiller frame by frame with the teacher's answers arriving asynchronously."""

    def __init__(self, distiller: OnlineDistiller, keyframe_meter: ConfusionMeter, name: str = "stream") -> None:
        self.distiller = distiller
        self.keyframe_meter = keyframe_meter
        self.name = name
        self.labeler = AsyncLabeler(distiller.teacher)
        self.pending: PendingKeyframe | None = None
        self.learning: KeyframeLearning | None = None
        self._matrix = np.zeros((distiller.num_classes, distiller.num_classes), np.int64)
        self.keyframes = 0
        self.teacher_errors = 0

    def step(self, frame: Frame) -> tuple[FrameResult, Learned | None]:
        """Infer ``frame`` (after one step of any keyframe being learned); ask for labels when it is due."""
        learned = self._advance()
        result = self.distiller.infer(frame)
        if self.pending is None:
            trigger = self._due(frame, result)
            if trigger is not None:
                self.pending = self.labeler.request(frame, result.prediction, trigger)
        else:
            self.distiller.observe(frame)
        return result, learned

    def _due(self, frame: Frame, result: FrameResult) -> Trigger | None:
        """Why ``frame`` is a keyframe. While the student still learns the last one, only a cut counts:
        the new scene's labels are asked for at once, not after updates on the old scene's."""
        if self.learning is not None:
            return self.distiller.cut_trigger(frame)
        return self.distiller.keyframe_trigger(frame) or self.distiller.confidence_trigger(result)

    def close(self) -> None:
        """Drop a keyframe still in flight or being learned (it is not counted) and stop the labeller."""
        self.pending = self.learning = None
        self.labeler.close()

    def _advance(self) -> Learned | None:
        if self.learning is None and not self._start():
            return None
        result = self.distiller.advance(self.learning)
        if result is None:
            return None
        self.learning = None
        self.keyframes += 1
        self.keyframe_meter.add(self._matrix)  # counted with the keyframe, once its learning is over
        return Learned(result, mean_iou(self._matrix), mean_iou(self._matrix, include_background=False))

    def _start(self) -> bool:
        pending = self.pending
        if pending is None or not pending.ready():
            return False
        self.pending = None
        try:
            answer = pending.answer.result()
        except TeacherError as exc:
            self.teacher_errors += 1
            log.warning("%s: keyframe %d not labelled: %s", self.name, pending.frame.index, exc)
            return False
        self._matrix = confusion(pending.prediction, answer.labels[0].classes, self.distiller.num_classes)
        self.learning = self.distiller.begin_learning(pending.frame, answer, new_frame=False, trigger=pending.trigger)
        return True
