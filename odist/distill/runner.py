"""Drive one stream from source through the distiller into a result sink, with evaluation and progress."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from odist.distill.class_stats import class_pixels, class_regions
from odist.distill.distiller import FrameResult, OnlineDistiller
from odist.distill.metrics import ConfusionMeter, class_iou, confusion, mean_iou
from odist.distill.overlap import Learned, OverlappedKeyframes
from odist.errors import InputError, OdistError
from odist.models.teachers.base import Teacher
from odist.models.teachers.device_cost import DeviceTeacherCost, device_teacher_cost
from odist.video.frame import Frame


class ResultSink(Protocol):
    """Takes every frame's record and mask; a sink that also has ``add_label(frame_index, classes)`` (a
    ``SegmentWriter``) is given each keyframe's teacher labels before the frame at which they were learned."""

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
    """Runs a distiller over frames into ``sink``; with ``evaluator`` set, scores every frame against its labels.

    The evaluator's cost is booked apart in the ledger (``evaluation_*``) and never enters the speed-up.
    With ``overlap`` the keyframe labels are awaited in the background (``OverlappedKeyframes``, named
    ``name`` in its warnings) between ``open`` and ``close``; ``run`` opens and closes around its frames.
    """

    def __init__(self, distiller: OnlineDistiller, sink: ResultSink, evaluator: Teacher | None = None, *,
                 overlap: bool = False, name: str = "stream") -> None:
        self.distiller = distiller
        self.sink = sink
        self.evaluator = evaluator
        self.overlap = overlap
        self.name = name
        self.meter = ConfusionMeter(distiller.num_classes)
        self.keyframe_meter = ConfusionMeter(distiller.num_classes)
        self.wall_seconds = 0.0
        self.keyframes: OverlappedKeyframes | None = None  # the background labelling while open, with ``overlap``
        self.teacher_errors = 0  # label requests that failed in the background, over every open..close

    def open(self) -> None:
        """Start the background labelling (with ``overlap``); ``process`` may be called until ``close``."""
        if self.overlap and self.keyframes is None:
            self.keyframes = OverlappedKeyframes(self.distiller, self.keyframe_meter, self.name)

    def close(self) -> None:
        """Stop the background labelling; a keyframe still in flight is dropped (not counted)."""
        if self.keyframes is not None:
            self.keyframes.close()
            self.teacher_errors += self.keyframes.teacher_errors
            self.keyframes = None

    def run(self, frames: Iterable[Frame], total: int | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> None:
        """Process ``frames``; the wall clock covers decode, student, teacher and sink together."""
        self.open()
        start = time.perf_counter()
        seen = 0
        try:
            for frame in frames:
                result = self.process(frame)
                seen += 1
                self.wall_seconds += time.perf_counter() - start
                start = time.perf_counter()
                if on_progress is not None:
                    shown = self.meter if self.evaluator is not None else self.keyframe_meter
                    ledger = self.distiller.ledger
                    on_progress(Progress(ledger.frames, total, result.stride, shown.miou(), ledger.keyframes))
        finally:
            self.close()
        self.wall_seconds += time.perf_counter() - start
        if seen == 0 and self.distiller.ledger.frames == 0:
            raise InputError("the input produced no frames", "check the video file or the --max-frames value")

    def process(self, frame: Frame, *, timed: bool = False) -> FrameResult:
        """Distill one frame and hand its record and mask to the sink; ``timed`` adds its time to the wall clock
        (for a caller that paces frames itself, as a live camera does)."""
        started = time.perf_counter()
        if self.keyframes is None:
            result, learned = self.distiller.step(frame), None
        else:
            result, learned = self.keyframes.step(frame)
        self._record(frame, result, learned)
        if timed:
            self.wall_seconds += time.perf_counter() - started
        return result

    def _record(self, frame: Frame, result: FrameResult, learned: Learned | None = None) -> None:
        if result.teacher_labels is not None:
            self.keyframe_meter.add(confusion(result.prediction, result.teacher_labels.classes,
                                              self.distiller.num_classes))
        record = frame_record(frame, result, learned, self.distiller.ladder.stride, self.distiller.num_classes)
        self._keep_labels(result if learned is None else learned.result)
        if self.evaluator is not None:
            matrix = confusion(result.prediction, self._reference(frame, result), self.distiller.num_classes)
            self.meter.add(matrix)
            record.update(miou=mean_iou(matrix), miou_foreground=mean_iou(matrix, include_background=False))
        self.sink.add(record, result.prediction)

    def _keep_labels(self, keyframe: FrameResult) -> None:
        """Hand a keyframe's teacher labels to the sink (when it keeps them), so they are never paid for twice."""
        add_label = getattr(self.sink, "add_label", None)
        if keyframe.teacher_labels is not None and add_label is not None:
            add_label(keyframe.index, keyframe.teacher_labels.classes)

    def _reference(self, frame: Frame, result: FrameResult) -> np.ndarray:
        if result.teacher_labels is not None:
            return result.teacher_labels.classes
        answer = self.evaluator.label([frame])
        self.distiller.ledger.count_evaluation(len(answer.labels), answer.seconds)
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
        here = self.teacher_cost_here()
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
            "speedup_measured": ledger.speedup_measured(math.nan if here is None else here.seconds_per_frame),
            "teacher_cost_here": None if here is None else here.as_dict(),
            "speedup_flops": ledger.speedup_flops(teacher_gflops),
            "student_gflops_per_frame": self.distiller.student_gflops_per_frame,
            "teacher_gflops_per_frame": teacher_gflops,
            "wall_seconds": self.wall_seconds,
            "frames_per_second": ledger.frames / self.wall_seconds if self.wall_seconds else math.nan,
            "ledger": ledger.state_dict(),
        }

    def teacher_cost_here(self) -> DeviceTeacherCost | None:
        """The teacher's per-frame cost on the student's device, which the measured speed-up charges each
        teacher frame: the teacher's own wall time when it ran there, else the configured Mask R-CNN's
        (cached or measured once, ``device_cost``); None when it cannot be measured (said once)."""
        ledger, teacher = self.distiller.ledger, self.distiller.teacher
        config = self.distiller.config
        if 0 in self._frame_size():
            return None  # no frame yet
        own = ledger.teacher_seconds_per_frame()
        ran_here = teacher.seconds_device() == torch.device(config.device).type and math.isfinite(own)
        try:
            return device_teacher_cost(config, *self._frame_size(), ran_here=own if ran_here else None,
                                       charged=None if ran_here or not math.isfinite(own) else own)
        except (RuntimeError, OSError, OdistError) as exc:
            warnings.warn(f"{self.name}: the teacher's cost on {config.device} could not be measured ({exc}); "
                          "the measured speed-up is n/a (set teacher.device_ms to give it)", stacklevel=2)
            return None

    def _frame_size(self) -> tuple[int, int]:
        return self.distiller.frame_size


def frame_record(frame: Frame, result: FrameResult, learned: Learned | None, stride: int,
                 num_classes: int) -> dict[str, Any]:
    """One frame's record. With overlapped keyframes the keyframe row is the frame at which a keyframe's
    learning finished, and its ``miou`` / ``miou_foreground`` score the prediction made for that keyframe
    before its labels came; otherwise the keyframe row is the keyframe itself. (An evaluator overwrites
    ``miou`` / ``miou_foreground`` with every frame's score.) The class columns describe this frame's
    prediction, and on a keyframe row the teacher's labels of that keyframe (``class_stats``)."""
    keyframe = result if result.keyframe else (None if learned is None else learned.result)
    scores = (math.nan, math.nan) if learned is None else (learned.miou, learned.miou_foreground)
    labels = None if keyframe is None or keyframe.teacher_labels is None else keyframe.teacher_labels.classes
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
        "class_pixels": class_pixels(result.prediction, num_classes),
        "class_regions": class_regions(result.prediction, num_classes),
        "teacher_class_pixels": None if labels is None else class_pixels(labels, num_classes),
        "teacher_class_regions": None if labels is None else class_regions(labels, num_classes),
    }


def _by_name(ious: np.ndarray, class_names: tuple[str, ...]) -> dict[str, float | None]:
    return {name: (None if math.isnan(v) else float(v)) for name, v in zip(class_names, ious, strict=True)}
