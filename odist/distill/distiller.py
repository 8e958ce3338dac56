"""Online distillation of one stream (PAPER.md, "Online distillation"), with no Ray in it.

For every frame: on a keyframe, ask the teacher, take up to ``max_updates`` SGD steps until the
student's minimum per-class IoU on that keyframe exceeds the threshold, and move the stride ladder;
on every other frame, run the student only. Which frames are keyframes is the ``KeyframePolicy``'s
call: the ladder, a scene cut, drift from the last keyframe's view, or a drop of the student's confidence.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from collections.abc import Callable, Generator

import numpy as np
import torch
import torch.nn.functional as F

from odist.config import OdistConfig
from odist.distill.learning import (
    IMAGE_MEAN,
    IMAGE_STD,
    Example,
    FrameResult,
    KeyframeLearning,
    Outcome,
    camera_motion,
    class_map,
    make_example,
    make_optimizer,
    new_student,
    student_confidence,
    update_steps,
)
from odist.distill.ledger import CostLedger
from odist.distill.policy import KeyframePolicy, Trigger
from odist.distill.scene import scene_signature
from odist.distill.schedule import StrideLadder
from odist.distill.student_costs import FrameFlops
from odist.distill.viewbank import ViewBank
from odist.errors import TeacherError
from odist.models.acceleration import (
    Acceleration,
    StudentMemory,
    compile_forward,
    device_time,
    limit_gpu_memory,
    to_channels_last,
    upload,
)
from odist.models.fold import FoldedForward, has_running_stats
from odist.models.jitnet import JITNet
from odist.models.teachers.base import Teacher, TeacherResult
from odist.video.frame import Frame


class OnlineDistiller:
    """Holds one stream's student, optimiser, stride ladder and cost ledger."""

    def __init__(self, config: OdistConfig, teacher: Teacher, student: JITNet | None = None) -> None:
        self.config = config
        self.teacher = teacher
        self.device = torch.device(config.device)
        self.num_classes = len(config.classes)
        d = config.distill
        self._rng = random.Random(d.seed)
        self.student = student or new_student(config)
        self.student.to(self.device)
        self.acceleration = Acceleration.resolve(config.performance, self.device)
        if self.acceleration.channels_last:
            to_channels_last(self.student)
        self._forward = compile_forward(self.student, self.acceleration.compile)
        # Running statistics fold into the convolutions at inference (compiled forwards fold their own).
        self._infer_forward = self._forward
        if has_running_stats(self.student) and not self.acceleration.compile:
            self._infer_forward = FoldedForward(self.student, self.acceleration.channels_last)
        self._scaler = self.acceleration.grad_scaler()
        self._memory = StudentMemory(self.student, self.device, self.acceleration.amp_dtype is not None)
        if self._gpu_share() is not None:
            self._guard_gpu_memory(0, 0)
            limit_gpu_memory(self.device, self._gpu_share())
        self.optimizer = make_optimizer(self.student, d)
        self.policy = KeyframePolicy.from_config(d)
        self.view_bank = ViewBank(d.view_bank_size, d.view_threshold) if d.view_bank_size else None
        self.ledger = CostLedger()
        self.warm_started = False  # began from a checkpoint's weights (distill.warm_start_* apply)
        self._replay: deque[Example] = deque(maxlen=max(d.replay_buffer_size, 1))
        self._mean = torch.tensor(IMAGE_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGE_STD, device=self.device).view(1, 3, 1, 1)
        self._flops = FrameFlops(self.student, config.student.input_scale)

    def _gpu_share(self) -> float | None:
        """``performance.gpu_memory_fraction`` when it applies (set, on a CUDA device), else None."""
        fraction = self.config.performance.gpu_memory_fraction
        return fraction if self.device.type == "cuda" else None

    def _guard_gpu_memory(self, height: int, width: int) -> None:
        """Check the GPU share against the student's estimated needs, once per frame size (``StudentMemory``)."""
        fraction = self._gpu_share()
        if fraction is not None:
            d = self.config.distill
            slots = 2 if d.optimizer == "adam" else int(d.momentum > 0)
            self._memory.check(fraction, height, width, self.config.student.input_scale, slots,
                               1 + d.replay_samples + int(d.augment_zoom > 0))

    # -- per frame -------------------------------------------------------------------------------

    @property
    def ladder(self) -> StrideLadder:
        """The keyframe policy's stride ladder."""
        return self.policy.ladder

    def step(self, frame: Frame) -> FrameResult:
        """Process one frame: keyframe work when the policy says so (before or after the student's
        inference of the frame), else student inference."""
        trigger = self.keyframe_trigger(frame)
        if trigger is not None:
            return self.learn(frame, self.teacher.label([frame]), trigger=trigger)
        result = self.infer(frame)
        trigger = self.confidence_trigger(result)
        if trigger is None:
            return result
        return self.learn(frame, self.teacher.label([frame]), new_frame=False, trigger=trigger)

    def infer(self, frame: Frame) -> FrameResult:
        """Student inference only (no teacher, no update); the frame counts as processed."""
        self._account_flops(frame)
        image = self._to_tensor(frame.image)
        self.ledger.frames += 1
        start = device_time(self.device)
        prediction, confidence, foreground = self._infer(image)
        seconds = device_time(self.device) - start
        self.ledger.student_inference_seconds += seconds
        self.ledger.student_inference_gflops += self._flops.inference
        return FrameResult(frame.index, prediction, False, 0, self.ladder.stride, None, seconds, 0.0, None,
                           confidence=confidence, foreground=foreground)

    def keyframe_trigger(self, frame: Frame) -> Trigger | None:
        """Why ``frame`` is a keyframe before the student sees it (a cut, or the ladder), or None."""
        if self._frozen():
            return None
        return self.policy.before_inference(frame)

    def observe(self, frame: Frame) -> None:
        """Let the policy see a frame it is not asked about (labels in flight), so no cut goes unseen."""
        if not self._frozen():
            self.policy.observe(frame)

    def cut_trigger(self, frame: Frame) -> Trigger | None:
        """``Trigger.CUT`` when ``frame`` starts a new scene; the ladder is not consulted."""
        if self._frozen():
            return None
        return self.policy.cut(frame)

    def confidence_trigger(self, result: FrameResult) -> Trigger | None:
        """``Trigger.CONFIDENCE`` or ``Trigger.FLIP`` when the student's confidence on the frame it just
        inferred fell, or its foreground moved, too far since the last keyframe."""
        if self._frozen():
            return None
        return self.policy.after_inference(result.confidence, result.foreground)

    def _frozen(self) -> bool:
        """``distill.freeze_after_keyframes`` reached: the teacher is never asked again."""
        freeze = self.config.distill.freeze_after_keyframes
        return bool(freeze and self.ledger.keyframes >= freeze)

    def learn(self, frame: Frame, answer: TeacherResult, *, new_frame: bool = True,
              trigger: Trigger | str = Trigger.LADDER) -> FrameResult:
        """Keyframe work on ``frame`` with the teacher's ``answer``: updates, then the ladder moves.

        ``new_frame=False`` when the frame was already counted by ``infer`` (a live student learns from a
        keyframe whose labels arrived after its inference).
        """
        learning = self.begin_learning(frame, answer, new_frame=new_frame, trigger=trigger)
        while (result := self.advance(learning)) is None:
            pass
        return result

    def begin_learning(self, frame: Frame, answer: TeacherResult, *, new_frame: bool = True,
                       trigger: Trigger | str = Trigger.LADDER) -> KeyframeLearning:
        """``learn`` one step at a time: ``advance`` the result until it gives the ``FrameResult``.

        A live student advances once per incoming frame, so updates never stall inference for long. The
        keyframe enters the ledger when its learning is over (one left unfinished is not counted).
        """
        self._account_flops(frame)
        image = self._to_tensor(frame.image)
        if new_frame:
            self.ledger.frames += 1
        labels = answer.labels[0]
        if labels.classes.shape != (frame.height, frame.width):
            raise TeacherError(
                f"teacher label for frame {frame.index} is {labels.classes.shape}, frame is "
                f"{(frame.height, frame.width)}", "labels must be computed at the decoded frame size")
        signature = None
        if self.view_bank is not None:
            signature = scene_signature(frame.image)
            self._recall_view(signature, trigger)
        example = make_example(image, labels, self.num_classes, self.config.distill, self.device)
        steps = self._learn_steps(example, *self._update_budget(trigger))
        return KeyframeLearning(frame, answer, steps, trigger, inferred=not new_frame,
                                signature=signature)

    def advance(self, learning: KeyframeLearning) -> FrameResult | None:
        """One forward (and update) step of ``learning``; the keyframe's ``FrameResult`` once it is over."""
        start = device_time(self.device)
        outcome = learning.step()
        learning.seconds += device_time(self.device) - start
        return None if outcome is None else self._finish_learning(learning, outcome)

    def _recall_view(self, signature: np.ndarray, trigger: Trigger | str) -> None:
        """On a cut to a view the bank knows, continue from that view's student."""
        if Trigger(trigger) != Trigger.CUT:
            return
        weights = self.view_bank.recall(signature)
        if weights is not None:
            self.student.load_state_dict(weights)
            self.ledger.view_recalls += 1

    def _finish_learning(self, learning: KeyframeLearning, outcome: Outcome) -> FrameResult:
        """Book a keyframe whose updates are over in the ledger and move the ladder; its ``FrameResult``."""
        frame, answer, seconds, trigger = learning.frame, learning.answer, learning.seconds, learning.trigger
        before, accuracy, updates, prediction, batch = outcome
        empty = not bool((answer.labels[0].classes > 0).any())
        self.ledger.count_keyframe(Trigger(trigger).value, empty=empty, inferred=learning.inferred)
        if self.view_bank is not None and learning.signature is not None:
            self.view_bank.store(learning.signature, self.student)
        # (updates + 1) forward passes over the batch, ``updates`` of them followed by a backward pass.
        self.ledger.count_learning(answer.seconds, answer.gflops, updates, seconds,
                                   batch * (updates * self._flops.update + self._flops.inference))
        d = self.config.distill
        signal = before if d.stride_signal == "before_updates" else accuracy
        stride = self.policy.after_keyframe(frame.index, trigger, signal > d.accuracy_threshold, empty,
                                            handled=before > d.accuracy_threshold)
        return FrameResult(frame.index, prediction, True, updates, stride, accuracy, seconds, answer.seconds,
                           answer.labels[0], before, trigger=Trigger(trigger).value)

    def _learn_steps(self, example: Example, least: int, budget: int) -> Generator[None, None, Outcome]:
        """``update_steps`` on the keyframe plus replay samples and a camera-motion copy of it, at the current
        learning rate, with at least ``least`` and at most ``budget`` updates; the keyframe then joins the replay
        buffer."""
        d = self.config.distill
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        batch = [example, *self._replay_samples()]
        if d.augment_zoom > 0:
            batch.append(camera_motion(example, d.augment_zoom, self._rng))
        outcome = yield from update_steps(batch, self.student, self._logits, self.optimizer, self._scaler, d,
                                          self.num_classes, channels_last=self.acceleration.channels_last,
                                          least=least, budget=budget)
        if d.replay_buffer_size > 0:
            self._replay.append(example)
        return outcome

    def _replay_samples(self) -> list[Example]:
        n = min(self.config.distill.replay_samples, len(self._replay))
        return self._rng.sample(list(self._replay), n) if n else []

    def _infer(self, image: torch.Tensor) -> tuple[np.ndarray, float | None, torch.Tensor | None]:
        """The student's class map of ``image`` and, when the policy uses them, its confidence and the
        pixels it calls foreground."""
        if self.student.training:  # every module switches with the root (``train``/``eval`` only, here)
            self.student.eval()
        with torch.inference_mode():
            logits = self._logits(image, image.shape[-2:], self._infer_forward)
            classes = class_map(logits[0])
            confidence = student_confidence(logits[0], classes) if self.policy.needs_confidence else None
            foreground = classes > 0 if self.policy.needs_foreground else None
        return classes.to(torch.uint8).cpu().numpy(), confidence, foreground

    # -- tensors ---------------------------------------------------------------------------------

    def _logits(self, images: torch.Tensor, size: torch.Size | tuple[int, int],
                forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Float32 logits at ``size``; the student (or ``forward``) runs under ``performance.amp`` autocast
        (and compiled)."""
        scale = self.config.student.input_scale
        if scale != 1.0:
            images = F.interpolate(images, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
        with self.acceleration.autocast():
            logits = (forward or self._forward)(images)
        logits = logits.float()
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def _to_tensor(self, image: np.ndarray) -> torch.Tensor:
        """The normalised (1, 3, H, W) input on the device (pinned upload, channels_last when switched on)."""
        self._guard_gpu_memory(*image.shape[:2])
        x = upload(image, self.device, self.acceleration.pinned_uploads)
        x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255)
        x = (x - self._mean) / self._std
        return to_channels_last(x) if self.acceleration.channels_last else x

    def _account_flops(self, frame: Frame) -> None:
        self._flops.see(frame.height, frame.width)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames seen so far; (0, 0) before the first."""
        return self._flops.size

    @property
    def student_gflops_per_frame(self) -> float:
        return self._flops.inference

    # -- state -----------------------------------------------------------------------------------

    def learning_rate(self) -> float:
        """The next keyframe's learning rate: ``distill.lr``, scaled for a warm start's first keyframes."""
        d = self.config.distill
        early = self.warm_started and self.ledger.keyframes < d.warm_start_lr_keyframes
        return d.lr * d.warm_start_lr_scale if early else d.lr

    def _update_budget(self, trigger: Trigger | str) -> tuple[int, int]:
        """The fewest and the most updates a keyframe takes: the policy's boost and the early budget on top of
        ``distill.max_updates``; none at all when that is 0 (a frozen student stays frozen)."""
        if self.config.distill.max_updates == 0:
            return 0, 0
        least, most = self.policy.update_budget(trigger)
        return least, max(most, self.early_max_updates())

    def early_max_updates(self) -> int:
        """The next keyframe's most updates as the stream's age allows: ``early_max_updates`` on the first
        ``early_keyframes`` keyframes of the stream (counted by the ledger, so a resume continues the count), else
        ``distill.max_updates``."""
        d = self.config.distill
        return d.early_max_updates if self.ledger.keyframes < d.early_keyframes else d.max_updates

    def state_dict(self) -> dict:
        """Everything needed to continue this stream exactly: weights, optimiser, ladder, ledger."""
        return {
            "student": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ladder": self.ladder.state_dict(),
            "policy": self.policy.state_dict(),
            "view_bank": None if self.view_bank is None else self.view_bank.state_dict(),
            "ledger": self.ledger.state_dict(),
            "replay": [e.state() for e in self._replay],
            "rng": list(self._rng.getstate()[1]),
            "grad_scaler": self._scaler.state_dict(),
            "warm_started": self.warm_started,
        }

    def load_state_dict(self, state: dict, *, weights_only: bool = False) -> None:
        """Restore a saved state; ``weights_only`` warm-starts the student and keeps the rest fresh."""
        self.student.load_state_dict(state["student"])
        if weights_only:
            self.warm_started = True
            self.policy.ladder.rung = self.config.distill.warm_start_rung
            return
        self.warm_started = bool(state.get("warm_started", False))
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.policy.load_state_dict(state.get("policy", {"ladder": state["ladder"]}))
        if self.view_bank is not None and state.get("view_bank"):
            self.view_bank.load_state_dict(state["view_bank"])
        self.ledger = CostLedger.from_state_dict(state["ledger"])
        self._replay.clear()
        self._replay.extend(Example.from_state(example, self.device) for example in state.get("replay", []))
        if "rng" in state:
            self._rng.setstate((3, tuple(int(x) for x in state["rng"]), None))
        if state.get("grad_scaler"):
            self._scaler.load_state_dict(state["grad_scaler"])
