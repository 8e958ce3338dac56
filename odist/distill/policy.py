"""The keyframe policy: when to ask the teacher, and how a keyframe moves the stride ladder.

The paper's stride ladder looks back only: it climbs after a keyframe the student fits and drops after one
it does not. The policy adds three rules that follow the scene (each off by a config value, which gives
back the paper's loop exactly):

* **cut** (``distill.cut_threshold``): a frame whose scene signature is far from the last keyframe's is
  a keyframe at once, and the ladder restarts from its lowest rung;
* **confidence** (``distill.confidence_drop``): a frame on which the student's confidence (the mean
  max-softmax over the pixels it calls foreground; no reading when it calls almost none) falls this far
  below its value on the first frame read after the last keyframe is a keyframe too;
* **empty keyframes** (``distill.empty_keyframes="hold"``): a keyframe whose teacher labels hold no
  foreground tests nothing about the student's foreground skill, so the rung holds rather than climbs
  (a failed test still drops it); after ``distill.empty_patience`` empty keyframes in a row it climbs one.

Every keyframe carries its trigger: ``ladder`` (the stride ran out), ``cut`` or ``confidence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from odist.config import DistillConfig
from odist.distill.scene import scene_distance, scene_signature
from odist.distill.schedule import StrideLadder
from odist.video.frame import Frame


class Trigger(str, Enum):
    """Why a keyframe was taken."""

    LADDER = "ladder"
    CUT = "cut"
    CONFIDENCE = "confidence"


TRIGGERS: tuple[str, ...] = tuple(t.value for t in Trigger)


@dataclass
class KeyframePolicy:
    """The stride ladder plus the scene triggers of ``config`` (see the module docstring)."""

    config: DistillConfig
    ladder: StrideLadder
    reference: np.ndarray | None = None  # scene signature of the last keyframe
    confidence_reference: float | None = None  # the student's confidence on the first frame after it
    empty_streak: int = 0
    _signature: np.ndarray | None = field(default=None, repr=False)  # of the frame being decided

    @classmethod
    def from_config(cls, config: DistillConfig) -> KeyframePolicy:
        return cls(config, StrideLadder.from_strides(config.strides))

    @property
    def stride(self) -> int:
        return self.ladder.stride

    @property
    def needs_confidence(self) -> bool:
        return self.config.confidence_drop > 0

    @property
    def needs_signature(self) -> bool:
        return self.config.cut_threshold > 0

    def before_inference(self, frame: Frame) -> Trigger | None:
        """The trigger that makes ``frame`` a keyframe before the student sees it (a cut, or the ladder)."""
        trigger = self.cut(frame)
        if trigger is None and self.ladder.is_keyframe(frame.index):
            trigger = Trigger.LADDER
            self._requested()
        return trigger

    def cut(self, frame: Frame) -> Trigger | None:
        """``Trigger.CUT`` when ``frame``'s scene is far from the last keyframe's (it becomes the reference)."""
        self._signature = scene_signature(frame.image) if self.needs_signature else None
        if not self._is_cut():
            return None
        self._requested()
        return Trigger.CUT

    def after_inference(self, confidence: float | None) -> Trigger | None:
        """``Trigger.CONFIDENCE`` when the student's confidence on the frame just inferred fell too far."""
        if confidence is None or not self.needs_confidence or math.isnan(confidence):
            return None
        if self.confidence_reference is None:
            self.confidence_reference = confidence
            return None
        if confidence < self.confidence_reference - self.config.confidence_drop:
            self._requested()
            return Trigger.CONFIDENCE
        return None

    def after_keyframe(self, frame_index: int, trigger: Trigger | str, threshold_met: bool, empty: bool) -> int:
        """Move the ladder after a keyframe's updates and schedule the next one; returns the new stride."""
        if trigger == Trigger.CUT:
            self.ladder.rung = 0
        self.empty_streak = self.empty_streak + 1 if empty and threshold_met else 0
        hold = self.config.empty_keyframes == "hold" and self.empty_streak > 0
        patience = self.config.empty_patience
        if hold and not (patience and self.empty_streak >= patience):
            self.ladder.next_keyframe = frame_index + self.ladder.stride
        else:
            self.ladder.after_keyframe(frame_index, threshold_met)
            if hold:
                self.empty_streak = 0
        self.confidence_reference = None  # taken again on the next frame inferred
        return self.ladder.stride

    def _is_cut(self) -> bool:
        if self._signature is None or self.reference is None:
            return False
        return scene_distance(self._signature, self.reference) > self.config.cut_threshold

    def _requested(self) -> None:
        """A keyframe was asked for on the frame being decided: its signature is the new reference."""
        if self._signature is not None:
            self.reference = self._signature

    # -- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "ladder": self.ladder.state_dict(),
            "reference": None if self.reference is None else self.reference.tolist(),
            "confidence_reference": self.confidence_reference,
            "empty_streak": self.empty_streak,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; a plain ladder state (a checkpoint from before the policy) also loads."""
        ladder = state.get("ladder", state)
        self.ladder = StrideLadder.from_state_dict(ladder)
        reference = state.get("reference")
        self.reference = None if reference is None else np.asarray(reference, np.float32)
        self.confidence_reference = state.get("confidence_reference")
        self.empty_streak = int(state.get("empty_streak", 0))
