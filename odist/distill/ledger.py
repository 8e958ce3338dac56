"""What a stream's processing cost: counts, measured seconds, FLOPs, and the speed-ups they imply."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from odist.config import CostModelConfig


@dataclass
class CostLedger:
    """Running totals for one stream.

    Student inference covers the frames between keyframes; a keyframe's student work (its accuracy
    checks and SGD steps) is counted as update time, as in the paper's cost model. Teacher work done
    only to evaluate the student (``evaluation_*``) is kept apart and never enters the speed-up.
    """

    frames: int = 0
    keyframes: int = 0
    updates: int = 0
    teacher_frames: int = 0
    student_inference_seconds: float = 0.0
    student_update_seconds: float = 0.0
    teacher_seconds: float = 0.0
    student_inference_gflops: float = 0.0
    student_update_gflops: float = 0.0
    teacher_gflops: float = 0.0
    evaluation_teacher_frames: int = 0
    evaluation_teacher_seconds: float = 0.0
    # Keyframes by trigger (the rest were the ladder's), those whose teacher labels held no foreground,
    # and those the student had inferred before they became keyframes (a confidence trigger, live labels).
    cut_keyframes: int = 0
    drift_keyframes: int = 0
    confidence_keyframes: int = 0
    flip_keyframes: int = 0
    empty_keyframes: int = 0
    inferred_keyframes: int = 0
    view_recalls: int = 0  # cuts on which the view bank gave back a known view's student

    def count_keyframe(self, trigger: str, *, empty: bool, inferred: bool) -> None:
        """Count one keyframe whose learning is over."""
        self.keyframes += 1
        self.cut_keyframes += trigger == "cut"
        self.drift_keyframes += trigger == "drift"
        self.confidence_keyframes += trigger == "confidence"
        self.flip_keyframes += trigger == "flip"
        self.empty_keyframes += empty
        self.inferred_keyframes += inferred

    def count_learning(self, teacher_seconds: float, teacher_gflops: float, updates: int, update_seconds: float,
                       update_gflops: float) -> None:
        """Book one keyframe's teacher work (one frame) and its student updates."""
        self.teacher_frames += 1
        self.teacher_seconds += teacher_seconds
        self.teacher_gflops += teacher_gflops
        self.updates += updates
        self.student_update_seconds += update_seconds
        self.student_update_gflops += update_gflops

    def count_evaluation(self, frames: int, seconds: float) -> None:
        """Book an evaluator's labelling of ``frames`` apart (``evaluation_*``: never in the speed-up)."""
        self.evaluation_teacher_frames += frames
        self.evaluation_teacher_seconds += seconds

    def keyframes_by_trigger(self) -> dict[str, int]:
        cut, drift, confidence, flip = (self.cut_keyframes, self.drift_keyframes, self.confidence_keyframes,
                                        self.flip_keyframes)
        return {"ladder": self.keyframes - cut - drift - confidence - flip, "cut": cut, "drift": drift,
                "confidence": confidence, "flip": flip}

    def speedup_cost_model(self, model: CostModelConfig) -> float:
        """N*T / ((N-K+I)*S + K*T + U*U_cost): the paper's cost model over this stream, where I counts
        keyframes the student had already inferred (their inference was paid as well)."""
        n, k, u = self.frames, self.keyframes, self.updates
        inferred = n - k + self.inferred_keyframes
        spent = inferred * model.student_inference_ms + k * model.teacher_ms + u * model.student_update_ms
        return n * model.teacher_ms / spent if spent > 0 else math.nan

    def teacher_seconds_per_frame(self) -> float:
        return self.teacher_seconds / self.teacher_frames if self.teacher_frames else math.nan

    def speedup_measured(self, teacher_seconds_per_frame: float | None = None) -> float:
        """Teacher-on-every-frame time over the time spent, the student's measured seconds plus its teacher
        frames at ``teacher_seconds_per_frame`` (the teacher's cost on the student's device; default: the
        teacher's own seconds per frame, right only when it ran there)."""
        per_frame = self.teacher_seconds_per_frame() if teacher_seconds_per_frame is None else teacher_seconds_per_frame
        spent = self.student_inference_seconds + self.student_update_seconds + self.teacher_frames * per_frame
        baseline = self.frames * per_frame
        return baseline / spent if spent > 0 and not math.isnan(baseline) else math.nan

    def speedup_flops(self, teacher_gflops_per_frame: float) -> float:
        spent = self.student_inference_gflops + self.student_update_gflops + self.teacher_gflops
        return self.frames * teacher_gflops_per_frame / spent if spent > 0 else math.nan

    def state_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> CostLedger:
        return cls(**state)
