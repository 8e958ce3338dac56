"""Drive one stream from source through the distiller into a result sink, with evaluation and progress."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from odist.distill.distiller import FrameResult, OnlineDistiller
from odist.distill.metrics import ConfusionMeter, class_iou, confusion, mean_iou
from odist.distill.overlap import Learned, OverlappedKeyframes
from odist.errors import InputError
from odist.models.teachers.base import Teacher
from odist.video.frame import Frame


class ResultSink(Protocol):
    def add(self, record: dict[str, Any], mask: np.ndarray) -> None: ...


@dataclass
class Progress:
    """What a progress display shows after each frame."""

    frames: int
    total: int | None
    stride: int
    miou: float
    keyframes: int


class StreamRunner:
    """Runs a distiller over frames; with ``evaluator`` set, scores every frame against its labels.

    The evaluator's cost is booked apart in the ledger (``evaluation_*``) and never enters the speed-up.
    ``sink`` may be set after construction (a segment writer checkpoints this runner, so it comes later).
    """

    def __init__(self, distiller: OnlineDistiller, sink: ResultSink | None = None, evaluator: Teacher | None = None, *,
                 overlap: bool = False) -> None:
        self.distiller = distiller
        self.sink = sink
        self.evaluator = evaluator
        self.overlap = overlap  # keyframe labels awaited in the background (``OverlappedKeyframes``)
        self.meter = ConfusionMeter(distiller.num_classes)
        self.keyframe_meter = ConfusionMeter(distiller.num_classes)
        self.wall_seconds = 0.0

    def run(self, frames: Iterable[Frame], total: int | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> None:
        """Process ``frames``; the wall clock covers decode, student, teacher and sink together."""
        overlapped = OverlappedKeyframes(self.distiller, self.keyframe_meter) if self.overlap else None
        start = time.perf_counter()
        seen = 0
        try:
            for frame in frames:
                if overlapped is None:
                    result, learned = self.distiller.step(frame), None
                else:
                    result, learned = overlapped.step(frame)
                seen += 1
                self.wall_seconds += time.perf_counter() - start
                start = time.perf_counter()
                self._record(frame, result, learned)
                if on_progress is not None:
                    shown = self.meter if self.evaluator is not None else self.keyframe_meter
                    ledger = self.distiller.ledger
                    on_progress(Progress(ledger.frames, total, result.stride, shown.miou(), ledger.keyframes))
        finally:
            if overlapped is not None:
                overlapped.close()  # a keyframe still in flight at the end is dropped
        self.wall_seconds += time.perf_counter() - start
        if seen == 0 and self.distiller.ledger.frames == 0:
            raise InputError("the input produced no frames", "check the video file or the --max-frames value")

    def _record(self, frame: Frame, result: FrameResult, learned: Learned | None = None) -> None:
        if result.teacher_labels is not None:
            self.keyframe_meter.add(confusion(result.prediction, result.teacher_labels.classes,
                                              self.distiller.num_classes))
        record = frame_record(frame, result, learned, self.distiller.ladder.stride)
        if self.evaluator is not None:
            matrix = confusion(result.prediction, self._reference(frame, result), self.distiller.num_classes)
            self.meter.add(matrix)
            record.update(miou=mean_iou(matrix), miou_foreground=mean_iou(matrix, include_background=False))
        if self.sink is None:
            raise RuntimeError("StreamRunner.sink must be set before frames are recorded")
        self.sink.add(record, result.prediction)

    def _reference(self, frame: Frame, result: FrameResult) -> np.ndarray:
        if result.teacher_labels is not None:
            return result.teacher_labels.classes
        answer = self.evaluator.label([frame])
        ledger = self.distiller.ledger
        ledger.evaluation_teacher_frames += 1
        ledger.evaluation_teacher_seconds += answer.seconds
        return answer.labels[0].classes

    def state_dict(self) -> dict[str, Any]:
        """The running metrics, so a resumed stream reports over all its frames."""
        return {"meter": torch.from_numpy(self.meter.matrix.copy()),
                "keyframe_meter": torch.from_numpy(self.keyframe_meter.matrix.copy()),
                "wall_seconds": float(self.wall_seconds)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meter.matrix = torch.as_tensor(state["meter"]).numpy().astype(np.int64)
        self.keyframe_meter.matrix = torch.as_tensor(state["keyframe_meter"]).numpy().astype(np.int64)
        self.wall_seconds = float(state["wall_seconds"])

    def summary(self, class_names: tuple[str, ...]) -> dict[str, Any]:
        """The stream's headline numbers (``summary.json``)."""
        ledger = self.distiller.ledger
        cost_model = self.distiller.config.cost_model
        evaluated = self.evaluator is not None
        teacher_gflops = self.distiller.teacher.gflops_per_frame(*self._frame_size())
        keyframe_ious = class_iou(self.keyframe_meter.matrix)
        ious = class_iou(self.meter.matrix) if evaluated else None
        return {
            "frames": ledger.frames,
            "keyframes": ledger.keyframes,
            "updates": ledger.updates,
            "keyframe_fraction": ledger.keyframes / ledger.frames if ledger.frames else math.nan,
            "keyframes_by_trigger": ledger.keyframes_by_trigger(),
            "empty_keyframes": ledger.empty_keyframes,
            "view_recalls": ledger.view_recalls,
            "final_stride": self.distiller.ladder.stride,
            "evaluated": evaluated,
            "miou": self.meter.miou() if evaluated else None,
            "miou_foreground": self.meter.miou(include_background=False) if evaluated else None,
            "class_iou": _by_name(ious, class_names) if evaluated else None,
            "keyframe_miou": self.keyframe_meter.miou(),
            "confusion": self.meter.matrix.tolist() if evaluated else None,
            "keyframe_class_iou": _by_name(keyframe_ious, class_names),
            "speedup_cost_model": ledger.speedup_cost_model(cost_model),
            "speedup_measured": ledger.speedup_measured(),
            "speedup_flops": ledger.speedup_flops(teacher_gflops),
            "student_gflops_per_frame": self.distiller.student_gflops_per_frame,
            "teacher_gflops_per_frame": teacher_gflops,
            "wall_seconds": self.wall_seconds,
            "frames_per_second": ledger.frames / self.wall_seconds if self.wall_seconds else math.nan,
            "ledger": ledger.state_dict(),
        }

    def _frame_size(self) -> tuple[int, int]:
        return self.distiller.frame_size


def frame_record(frame: Frame, result: FrameResult, learned: Learned | None, stride: int) -> dict[str, Any]:
    """One frame's record. With overlapped keyframes the keyframe row is the frame at which a keyframe's
    learning finished, and its ``miou`` / ``miou_foreground`` score the prediction made for that keyframe
    before its labels came; otherwise the keyframe row is the keyframe itself. (An evaluator overwrites
    ``miou`` / ``miou_foreground`` with every frame's score.)"""
    keyframe = result if result.keyframe else (None if learned is None else learned.result)
    scores = (math.nan, math.nan) if learned is None else (learned.miou, learned.miou_foreground)
    return {
        "frame_index": frame.index,
        "timestamp": frame.timestamp,
        "keyframe": keyframe is not None,
        "updates": 0 if keyframe is None else keyframe.updates,
        "stride": stride,
        "keyframe_accuracy": None if keyframe is None else keyframe.keyframe_accuracy,
        "trigger": None if keyframe is None else keyframe.trigger,
        "student_seconds": result.student_seconds + (0.0 if learned is None else learned.result.student_seconds),
        "teacher_seconds": 0.0 if keyframe is None else keyframe.teacher_seconds,
        "miou": scores[0],
        "miou_foreground": scores[1],
    }


def _by_name(ious: np.ndarray, class_names: tuple[str, ...]) -> dict[str, float | None]:
    return {name: (None if math.isnan(v) else float(v)) for name, v in zip(class_names, ious, strict=True)}
