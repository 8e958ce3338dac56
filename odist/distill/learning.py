"""What the distiller hands out per frame, and a keyframe's learning in progress.

``FrameResult`` is one frame's outcome; ``KeyframeLearning`` steps a keyframe's updates one at a time
(``OnlineDistiller.begin_learning``), so a live student never stalls inference for more than one update.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from odist.config import DistillConfig, OdistConfig
from odist.distill.loss import foreground_weights
from odist.distill.policy import Trigger
from odist.errors import TeacherError
from odist.models.jitnet import JITNet, jitnet
from odist.models.teachers.base import Labels, TeacherResult
from odist.video.frame import Frame

if TYPE_CHECKING:
    from odist.distill.distiller import OnlineDistiller


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
class _Example:
    image: torch.Tensor
    target: torch.Tensor
    weights: torch.Tensor


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
    """A keyframe's updates in progress; ``advance`` takes one step (see ``OnlineDistiller.begin_learning``)."""

    def __init__(self, distiller: OnlineDistiller, frame: Frame, answer: TeacherResult,
                 steps: Generator[None, None, tuple[float, float, int, np.ndarray, int]],
                 trigger: Trigger | str = Trigger.LADDER, *, inferred: bool = False,
                 signature: np.ndarray | None = None) -> None:
        self.distiller, self.frame, self.answer, self._steps = distiller, frame, answer, steps
        self.trigger = trigger
        self.inferred = inferred  # the frame was inferred (and counted) before it became a keyframe
        self.signature = signature  # the frame's scene signature, when a view bank files the student under it
        self.seconds = 0.0

    def advance(self) -> FrameResult | None:
        """One forward (and update) step; the keyframe's ``FrameResult`` once learning is over, else None."""
        start = self.distiller.now()
        try:
            next(self._steps)
        except StopIteration as done:
            self.seconds += self.distiller.now() - start
            return self.distiller.finish_learning(self, done.value)
        self.seconds += self.distiller.now() - start
        return None


def make_example(image: torch.Tensor, labels: Labels, num_classes: int, d: DistillConfig,
                 device: torch.device) -> _Example:
    """A keyframe as a training example: its image, the teacher's class map and the loss weights of its boxes."""
    if int(labels.classes.max(initial=0)) >= num_classes:
        raise TeacherError(f"teacher returned class id {int(labels.classes.max())} but the stream has "
                           f"{num_classes} classes", "check the teacher's class groups")
    target = torch.from_numpy(labels.classes.astype(np.int64)).to(device)
    h, w = labels.classes.shape
    weights = foreground_weights(labels.boxes, h, w, weight=d.foreground_weight, dilation=d.box_dilation,
                                 device=device)
    return _Example(image, target, weights)


def camera_motion(example: _Example, zoom: float, rng: random.Random) -> _Example:
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
    return _Example(image.contiguous(), target.long(), weights)


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
