"""The student's FLOPs per frame, counted once per architecture, input size and device in a process.

Counting runs the student forward and backward under ``FlopCounterMode`` (a few tens of milliseconds at
any size): a worker that distills many short streams of one student would pay it for every stream. The
count depends only on the shapes, so it is made once, on a copy of the student (whose weights, gradients
and running statistics the count never touches), and remembered.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from odist.models.flops import count_gflops

_COUNTS: dict[tuple[Any, ...], tuple[float, float]] = {}


def architecture_key(student: nn.Module) -> tuple[Any, ...]:
    """What a FLOP count depends on: the student's class, device and every parameter's and buffer's name and
    shape (not their values)."""
    device = next(student.parameters()).device
    shapes = tuple((name, tuple(t.shape)) for name, t in [*student.named_parameters(), *student.named_buffers()])
    return type(student).__module__, type(student).__qualname__, str(device), shapes


def student_gflops(student: nn.Module, height: int, width: int) -> tuple[float, float]:
    """GFLOPs of one inference and of one update (forward and backward) of ``student`` on a
    ``height`` x ``width`` input; counted on a copy the first time, then remembered."""
    key = (*architecture_key(student), height, width)
    counted = _COUNTS.get(key)
    if counted is None:
        twin = copy.deepcopy(student)
        counted = (count_gflops(twin, height, width), count_gflops(twin, height, width, backward=True))
        _COUNTS[key] = counted
    return counted


class FrameFlops:
    """``student_gflops`` at the size of the frames seen (scaled by ``input_scale``), counted once per size."""

    def __init__(self, student: nn.Module, input_scale: float) -> None:
        self.student, self.input_scale = student, input_scale
        self.size: tuple[int, int] = (0, 0)  # (height, width) of the frames seen so far; (0, 0) before the first
        self.inference, self.update = float("nan"), float("nan")

    def see(self, height: int, width: int) -> None:
        """Count the student's GFLOPs at this frame size, unless it is the size already counted."""
        if self.size != (height, width):
            scaled = max(32, round(height * self.input_scale)), max(32, round(width * self.input_scale))
            self.size = (height, width)
            self.inference, self.update = student_gflops(self.student, *scaled)
