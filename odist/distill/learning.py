"""What the distiller hands out per frame, and a keyframe's learning: its examples, updates and progress.

``FrameResult`` is one frame's outcome; ``KeyframeLearning`` holds a keyframe's updates in progress, which
``OnlineDistiller.advance`` steps one at a time, so a live student never stalls inference for more than one
update. Nothing here knows the distiller: it hands in the student, its forward and its optimiser.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from odist.config import DistillConfig, OdistConfig
from odist.distill.loss import distillation_loss, foreground_weights
from odist.distill.metrics import confusion, min_class_iou
from odist.distill.policy import Trigger
from odist.errors import TeacherError
from odist.models.acceleration import to_channels_last
from odist.models.jitnet import JITNet, jitnet
from odist.models.teachers.base import Labels, TeacherResult
from odist.video.frame import Frame

Outcome = tuple[float, float, int, np.ndarray, int]  # min-class IoU before and after, updates, prediction, batch

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass
class FrameResult:
    """What the distiller did with one frame."""

    index: int
    prediction: np.ndarray
    keyframe: bool
    updates: int
    stride: int
    keyframe_accuracy: float | None
    student_seconds: float
    teacher_seconds: float
    teacher_labels: Labels | None
    accuracy_before_updates: float | None = None
    trigger: str | None = None  # why a keyframe was taken (``Trigger``); None on other frames
    confidence: float | None = None  # the student's confidence on an inferred frame, when the policy uses it
    foreground: torch.Tensor | None = None  # the pixels it called foreground there, when the policy uses them


@dataclass
class Example:
    """A keyframe as a training example: its image, the teacher's class map and the per-pixel loss weights."""

    image: torch.Tensor
    target: torch.Tensor
    weights: torch.Tensor

    def state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The example on the CPU, as a checkpoint keeps it."""
        return self.image.cpu(), self.target.cpu(), self.weights.cpu()

    @classmethod
    def from_state(cls, state: tuple[torch.Tensor, torch.Tensor, torch.Tensor], device: torch.device) -> Example:
        image, target, weights = state
        return cls(image.to(device), target.to(device), weights.to(device))


def class_map(logits: torch.Tensor) -> torch.Tensor:
    """(C, H, W) logits -> (H, W) class ids. ``max(0)`` rather than ``argmax(0)``: on CPU torch the
    latter reduces over the leading dimension about 9x slower (53 vs 6 ms at 640x360, one thread)."""
    return logits.max(0).indices


MIN_CONFIDENCE_PIXELS = 0.001  # of the frame: fewer foreground pixels give no confidence reading


def student_confidence(logits: torch.Tensor, classes: torch.Tensor) -> float | None:
    """Mean max-softmax over the pixels the student calls foreground; None when it calls too few (a mean
    over a handful of stray pixels says nothing)."""
    foreground = classes > 0
    if int(foreground.sum()) < max(16, MIN_CONFIDENCE_PIXELS * foreground.numel()):
        return None
    return float(logits.softmax(0).max(0).values[foreground].mean())


class KeyframeLearning:
    """A keyframe's updates in progress: ``step`` takes one (``OnlineDistiller.advance`` times it and books the
    keyframe once ``step`` gives the ``Outcome``)."""

    def __init__(self, frame: Frame, answer: TeacherResult, steps: Generator[None, None, Outcome],
                 trigger: Trigger | str = Trigger.LADDER, *, inferred: bool = False,
                 signature: np.ndarray | None = None) -> None:
        self.frame, self.answer, self._steps = frame, answer, steps
        self.trigger = trigger
        self.inferred = inferred  # the frame was inferred (and counted) before it became a keyframe
        self.signature = signature  # the frame's scene signature, when a view bank files the student under it
        self.seconds = 0.0

    def step(self) -> Outcome | None:
        """One forward (and update) step; the ``Outcome`` once learning is over, else None."""
        try:
            next(self._steps)
        except StopIteration as done:
            return done.value
        return None


def update_steps(batch: list[Example], student: torch.nn.Module,
                 forward: Callable[[torch.Tensor, torch.Size], torch.Tensor], optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, d: DistillConfig, num_classes: int, *,
                 channels_last: bool = False, least: int = 0, budget: int | None = None
                 ) -> Generator[None, None, Outcome]:
    """SGD steps on ``batch`` (the keyframe first) until the keyframe's min-class IoU > threshold after at least
    ``least`` updates, or the ``budget`` of updates (default ``d.max_updates``) is spent. ``forward(images,
    size)`` gives float32 logits at ``size``.

    Yields after each update; returns the keyframe's min-class IoU before and after the updates, the update
    count, the final prediction and the batch size.
    """
    example = batch[0]
    budget = d.max_updates if budget is None else budget
    images = torch.cat([e.image for e in batch])
    if channels_last:  # cat may return a plain contiguous batch
        images = to_channels_last(images)
    targets = torch.stack([e.target for e in batch])
    weights = torch.stack([e.weights for e in batch])
    updates = 0
    before = None
    min_pixels = round(d.min_class_fraction * example.target.numel())
    while True:
        if not student.training:  # inference between two steps (a live student) switches it to eval
            student.train()  # (the whole tree: walking its hundred modules costs per step otherwise)
        # The forward after the last allowed update only scores it: no graph to keep for a backward pass.
        with torch.set_grad_enabled(updates < budget):
            logits = forward(images, targets.shape[-2:])
        predicted = class_map(logits[0])
        accuracy = min_class_iou(confusion(predicted, example.target, num_classes), min_pixels)
        before = accuracy if before is None else before
        if (accuracy > d.accuracy_threshold and updates >= least) or updates >= budget:
            break
        loss = distillation_loss(logits, targets, weights, d.iou_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        updates += 1
        yield
    return before, accuracy, updates, predicted.to(torch.uint8).cpu().numpy(), len(batch)


def make_example(image: torch.Tensor, labels: Labels, num_classes: int, d: DistillConfig,
                 device: torch.device) -> Example:
    """A keyframe as a training example: its image, the teacher's class map and the loss weights of its boxes."""
    if int(labels.classes.max(initial=0)) >= num_classes:
        raise TeacherError(f"teacher returned class id {int(labels.classes.max())} but the stream has "
                           f"{num_classes} classes", "check the teacher's class groups")
    target = torch.from_numpy(labels.classes.astype(np.int64)).to(device)
    h, w = labels.classes.shape
    weights = foreground_weights(labels.boxes, h, w, weight=d.foreground_weight, dilation=d.box_dilation,
                                 device=device)
    return Example(image, target, weights)


def camera_motion(example: Example, zoom: float, rng: random.Random) -> Example:
    """``example`` seen by a moved camera: a crop of 1/s of it (s drawn from [1, 1 + zoom]) at a random
    place, resized back to its size; labels and loss weights move with the image (nearest neighbour)."""
    h, w = example.target.shape
    scale = 1.0 + rng.random() * zoom
    ch, cw = max(1, round(h / scale)), max(1, round(w / scale))
    y0, x0 = rng.randint(0, h - ch), rng.randint(0, w - cw)
    window = (slice(y0, y0 + ch), slice(x0, x0 + cw))
    image = F.interpolate(example.image[..., window[0], window[1]], size=(h, w), mode="bilinear",
                          align_corners=False)
    maps = torch.stack([example.target.float(), example.weights])[None, :, window[0], window[1]]
    target, weights = F.interpolate(maps, size=(h, w), mode="nearest")[0]
    return Example(image.contiguous(), target.long(), weights)


def new_student(config: OdistConfig) -> JITNet:
    """The config's student with its initial weights (seeded by ``distill.seed``, the global RNG untouched)."""
    s = config.student
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.distill.seed)
        return jitnet(len(config.classes), s.width, s.units, s.batch_stats_at_inference, s.fine_skips,
                      momentum=s.running_stats_momentum)


def make_optimizer(student: torch.nn.Module, d: DistillConfig) -> torch.optim.Optimizer:
    """The student's optimiser: ``distill.optimizer`` with its learning rate, momentum and weight decay."""
    if d.optimizer == "adam":
        return torch.optim.Adam(student.parameters(), lr=d.lr, weight_decay=d.weight_decay)
    return torch.optim.SGD(student.parameters(), lr=d.lr, momentum=d.momentum, weight_decay=d.weight_decay)
