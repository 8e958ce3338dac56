"""The keyframe policy: when to ask the teacher, and how a keyframe moves the stride ladder.

The paper's stride ladder looks back only: it climbs after a keyframe the student fits and drops after one
it does not. The policy adds rules that follow the scene (each off by a config value, which gives back the
paper's loop exactly):

* **cut** (``distill.cut_threshold``): a discontinuity of the scene. Under ``distill.cut_rule="jump"`` a
  frame whose signature jumps from the previous frame's (``jump_distance``: camera motion of a few cells
  taken out) by more than the threshold and more than ``distill.cut_contrast`` times the stream's own
  recent frame-to-frame motion (the median of the last ``MOTION_WINDOW`` jumps) is a cut; a pan, a zoom, a
  shaking camera or an exposure ramp moves little between two frames and is none. Under ``"keyframe"``
  (the rule before) a frame far from the last keyframe's signature is a cut. A cut is a keyframe at once;
  how it moves the ladder is ``distill.cut_ladder``: ``"reset"`` restarts it from its lowest rung;
  ``"test"`` lets the student's test on the new view decide: when the student already handles the cut's
  frame before any update (its min-class IoU passes the threshold, labels with foreground) the ladder moves
  as on any keyframe (a view-bank recall or a warm start may pass at once); otherwise it drops to the
  lowest rung and probes the new view again after the lowest stride, whatever the updates reached;
  ``"recover"``: as ``"test"``, and the rung held before such a cut is kept: the first later keyframe the
  student handles before its updates climbs straight back to it (or one rung, when that is higher);
* **drift** (``distill.drift_threshold``): a frame whose signature has drifted this far from the last
  keyframe's (a slow pan, a zoom, a scene that changes within the shot) is a keyframe; the ladder moves as
  on a ladder keyframe (no restart);
* **confidence** (``distill.confidence_drop``): a frame on which the student's confidence (the mean
  max-softmax over the pixels it calls foreground; no reading when it calls almost none) falls this far
  below its value on the first frame read after the last keyframe is a keyframe too;
* **flip** (``distill.flip_threshold``): a frame on which the student's foreground has moved this far
  from its foreground on the first frame read after the last keyframe (1 - IoU of the two; no reading
  while their union covers less than ``MIN_FLIP_PIXELS`` of the frame) is a keyframe. Of the cheap
  signals measured (``bench/moving_shots.py``) this one predicts best how far the student's accuracy has
  fallen since it was taught: the student's own answer drifting means the view moved under it. With
  ``distill.flip_contrast`` the threshold is a floor and a reading must also pass that many times the
  median of the stream's last ``MOTION_WINDOW`` readings (no firing before ``MIN_FLIP_READINGS``): where
  objects move all the time the readings are high throughout and the trigger keeps quiet; a view that
  changes under a calm stream stands out;
* **settling** (``distill.settle_from``): a climb onto that rung or above needs ``distill.settle_passes``
  passing keyframes in a row on the rung below, so a long ladder's top rungs wait for a student that keeps
  passing rather than one that passed once;
* **empty keyframes** (``distill.empty_keyframes="hold"``): a keyframe whose teacher labels hold no
  foreground tests nothing about the student's foreground skill, so the rung holds rather than climbs
  (a failed test still drops it); after ``distill.empty_patience`` empty keyframes in a row it climbs one;
* **boost** (``distill.boost_updates``): the first ``distill.boost_keyframes`` keyframes from a cut or a
  drift keyframe on take at least that many updates (up to ``distill.max_updates`` or that many, whichever
  is more), even when the student passes the keyframe's test earlier: a new view is where a label teaches
  most.

Every keyframe carries its trigger: ``ladder`` (the stride ran out), ``cut``, ``drift``, ``confidence`` or
``flip``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch

from odist.config import DistillConfig
from odist.distill.scene import jump_distance, scene_distance, scene_signature
from odist.distill.schedule import StrideLadder
from odist.video.frame import Frame

MOTION_WINDOW = 30  # recent frame-to-frame jumps that measure the stream's own motion (about a second)
MIN_FLIP_PIXELS = 0.002  # of the frame: a smaller union of two foregrounds gives no flip reading
MIN_FLIP_READINGS = 8  # a self-normalised flip waits for this many readings: the stream's typical value


class Trigger(str, Enum):
    """Why a keyframe was taken."""

    LADDER = "ladder"
    CUT = "cut"
    DRIFT = "drift"
    CONFIDENCE = "confidence"
    FLIP = "flip"


TRIGGERS: tuple[str, ...] = tuple(t.value for t in Trigger)


@dataclass
class KeyframePolicy:
    """The stride ladder plus the scene triggers of ``config`` (see the module docstring)."""

    config: DistillConfig
    ladder: StrideLadder
    reference: np.ndarray | None = None  # scene signature of the last keyframe
    previous: np.ndarray | None = None  # scene signature of the last frame observed (the jump rule)
    motion: deque[float] = field(default_factory=lambda: deque(maxlen=MOTION_WINDOW))  # recent jumps, no cuts
    cut_seen: bool = False  # a jump was observed and has not yet been taken as a keyframe
    confidence_reference: float | None = None  # the student's confidence on the first frame after it
    flip_reference: torch.Tensor | None = None  # the student's foreground on the first frame after it
    flips: deque[float] = field(default_factory=lambda: deque(maxlen=MOTION_WINDOW))  # recent flip readings
    boost_left: int = 0  # keyframes still boosted after the last cut or drift keyframe
    empty_streak: int = 0
    recover_rung: int | None = None  # the rung before a cut the student did not handle (cut_ladder "recover")
    pass_streak: int = 0  # passing keyframes in a row on the current rung (distill.settle_from)
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
    def needs_foreground(self) -> bool:
        return self.config.flip_threshold > 0

    @property
    def needs_signature(self) -> bool:
        return self.config.cut_threshold > 0 or self.config.drift_threshold > 0

    def before_inference(self, frame: Frame) -> Trigger | None:
        """The trigger that makes ``frame`` a keyframe before the student sees it (cut, drift, the ladder)."""
        trigger = self.cut(frame) or self._drift()
        if trigger is None and self.ladder.is_keyframe(frame.index):
            trigger = Trigger.LADDER
            self._requested()
        return trigger

    def observe(self, frame: Frame) -> None:
        """Take ``frame``'s scene signature and note a jump from the previous frame's (called once a frame)."""
        self._signature = scene_signature(frame.image) if self.needs_signature else None
        if self._signature is None or self.config.cut_rule != "jump" or self.config.cut_threshold <= 0:
            return
        if self.previous is not None:
            jump = jump_distance(self._signature, self.previous)
            if self._is_jump(jump):
                self.cut_seen = True
            else:
                self.motion.append(jump)
        self.previous = self._signature

    def cut(self, frame: Frame) -> Trigger | None:
        """``Trigger.CUT`` when ``frame`` (or a frame observed since the last cut) starts a new scene."""
        self.observe(frame)
        if not self._is_cut():
            return None
        self.cut_seen = False
        self._requested()
        return Trigger.CUT

    def after_inference(self, confidence: float | None, foreground: torch.Tensor | None = None) -> Trigger | None:
        """``Trigger.CONFIDENCE`` when the student's confidence on the frame just inferred fell too far,
        ``Trigger.FLIP`` when its ``foreground`` (the pixels it calls foreground) moved too far."""
        if self._flipped(foreground):
            self._requested()
            return Trigger.FLIP
        if confidence is None or not self.needs_confidence or math.isnan(confidence):
            return None
        if self.confidence_reference is None:
            self.confidence_reference = confidence
            return None
        if confidence < self.confidence_reference - self.config.confidence_drop:
            self._requested()
            return Trigger.CONFIDENCE
        return None

    def update_budget(self, trigger: Trigger | str) -> tuple[int, int]:
        """The fewest and the most updates a keyframe with ``trigger`` takes (``distill.boost_updates``
        on the first keyframes after a change of view; else none and ``distill.max_updates``)."""
        d = self.config
        boosted = d.boost_updates > 0 and (self.boost_left > 0 or trigger in (Trigger.CUT, Trigger.DRIFT))
        return (d.boost_updates, max(d.boost_updates, d.max_updates)) if boosted else (0, d.max_updates)

    def after_keyframe(self, frame_index: int, trigger: Trigger | str, threshold_met: bool, empty: bool,
                       handled: bool = False) -> int:
        """Move the ladder after a keyframe's updates and schedule the next one; returns the new stride.

        ``threshold_met``: the ladder's test (``distill.stride_signal``); ``handled``: the student passed
        the threshold on this keyframe before any update (what ``distill.cut_ladder="test"`` reads).
        """
        self.confidence_reference = None  # taken again on the next frame inferred
        self.flip_reference = None
        changed = trigger in (Trigger.CUT, Trigger.DRIFT)
        self.boost_left = self.config.boost_keyframes - 1 if changed else max(self.boost_left - 1, 0)
        self.empty_streak = self.empty_streak + 1 if empty and threshold_met else 0
        handled = handled and not empty  # labels with no foreground test nothing
        if trigger == Trigger.CUT and self.config.cut_ladder == "reset":
            self.ladder.rung = 0
            self.pass_streak = 0
        elif trigger == Trigger.CUT and not handled:
            self.pass_streak = 0
            if self.config.cut_ladder == "recover":
                self.recover_rung = max(self.ladder.rung, self.recover_rung or 0)
            self.ladder.rung = 0
            self.ladder.next_keyframe = frame_index + self.ladder.stride  # probe the new view early
            return self.ladder.stride
        self._move(frame_index, threshold_met, handled)
        if handled and self.recover_rung is not None:  # the student handles the new view: climb back at once
            self.ladder.rung = max(self.ladder.rung, min(self.recover_rung, len(self.ladder.strides) - 1))
            self.ladder.next_keyframe = frame_index + self.ladder.stride
            self.recover_rung = None
        return self.ladder.stride

    def _move(self, frame_index: int, threshold_met: bool, handled: bool) -> None:
        """The ladder's own move, holding the rung on empty keyframes (``distill.empty_keyframes``) and below
        ``distill.handled_climb_from`` unless the student handled the keyframe before its updates."""
        gate = self.config.handled_climb_from
        gated = bool(gate) and threshold_met and not handled and self.ladder.rung + 1 >= gate
        gated = self._settling(threshold_met) or gated
        hold = gated or (self.config.empty_keyframes == "hold" and self.empty_streak > 0)
        patience = self.config.empty_patience
        if gated or (hold and not (patience and self.empty_streak >= patience)):
            self.ladder.next_keyframe = frame_index + self.ladder.stride
        else:
            self.ladder.after_keyframe(frame_index, threshold_met)
            if hold:
                self.empty_streak = 0

    def _settling(self, threshold_met: bool) -> bool:
        """Whether a pass must wait on its rung: a climb onto ``distill.settle_from`` or above needs
        ``distill.settle_passes`` passing keyframes in a row on the rung below (a failure restarts the count)."""
        self.pass_streak = self.pass_streak + 1 if threshold_met else 0
        start = self.config.settle_from
        if start and threshold_met and self.ladder.rung + 1 >= start and self.pass_streak < self.config.settle_passes:
            return True
        if threshold_met:
            self.pass_streak = 0  # it climbs: the count starts again on the new rung
        return False

    def _flipped(self, foreground: torch.Tensor | None) -> bool:
        if foreground is None or not self.needs_foreground:
            return False
        if self.flip_reference is None or self.flip_reference.shape != foreground.shape:
            self.flip_reference = foreground.to("cpu", torch.bool, copy=True)
            return False
        reference = self.flip_reference.to(foreground.device)
        union = int((foreground | reference).sum())
        if union < MIN_FLIP_PIXELS * foreground.numel():
            return False
        flip = 1 - int((foreground & reference).sum()) / union
        contrast = self.config.flip_contrast
        if contrast <= 0:
            return flip > self.config.flip_threshold
        level = float(np.median(self.flips)) if len(self.flips) >= MIN_FLIP_READINGS else math.inf
        self.flips.append(flip)
        return flip > self.config.flip_threshold and flip > contrast * level

    def _is_jump(self, jump: float) -> bool:
        level = float(np.median(self.motion)) if self.motion else 0.0
        return jump > self.config.cut_threshold and jump > self.config.cut_contrast * level

    def _is_cut(self) -> bool:
        if self.config.cut_rule == "jump":
            return self.cut_seen
        if self._signature is None or self.reference is None or self.config.cut_threshold <= 0:
            return False
        return scene_distance(self._signature, self.reference) > self.config.cut_threshold

    def _drift(self) -> Trigger | None:
        threshold = self.config.drift_threshold
        if threshold <= 0 or self._signature is None or self.reference is None:
            return None
        if scene_distance(self._signature, self.reference) <= threshold:
            return None
        self._requested()
        return Trigger.DRIFT

    def _requested(self) -> None:
        """A keyframe was asked for on the frame being decided: its signature is the new reference."""
        if self._signature is not None:
            self.reference = self._signature

    # -- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "ladder": self.ladder.state_dict(),
            # Tensors, not lists: a checkpoint pickles two (18, 32, 3) lists of floats slowly.
            "reference": None if self.reference is None else torch.from_numpy(self.reference.copy()),
            "previous": None if self.previous is None else torch.from_numpy(self.previous.copy()),
            "motion": list(self.motion),
            "cut_seen": self.cut_seen,
            "confidence_reference": self.confidence_reference,
            "flip_reference": self.flip_reference,
            "flips": list(self.flips),
            "boost_left": self.boost_left,
            "empty_streak": self.empty_streak,
            "recover_rung": self.recover_rung,
            "pass_streak": self.pass_streak,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; a plain ladder state (a checkpoint from before the policy) also loads."""
        ladder = state.get("ladder", state)
        self.ladder = StrideLadder.from_state_dict(ladder)
        self.reference = _array(state.get("reference"))
        self.previous = _array(state.get("previous"))
        self.motion = deque((float(x) for x in state.get("motion", [])), maxlen=MOTION_WINDOW)
        self.cut_seen = bool(state.get("cut_seen", False))
        self.confidence_reference = state.get("confidence_reference")
        self.flip_reference = state.get("flip_reference")
        self.flips = deque((float(x) for x in state.get("flips", [])), maxlen=MOTION_WINDOW)
        self.boost_left = int(state.get("boost_left", 0))
        self.empty_streak = int(state.get("empty_streak", 0))
        rung = state.get("recover_rung")
        self.recover_rung = None if rung is None else int(rung)
        self.pass_streak = int(state.get("pass_streak", 0))


def _array(value: list | torch.Tensor | None) -> np.ndarray | None:
    """A signature as a checkpoint holds it (a tensor; a list in checkpoints written before) as an array."""
    if isinstance(value, torch.Tensor):
        return value.numpy().astype(np.float32)
    return None if value is None else np.asarray(value, np.float32)
