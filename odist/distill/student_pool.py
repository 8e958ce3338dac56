"""Fresh students for the streams one process distills one after another, without building each one.

Building a JITNet (about a hundred modules, each initialised from the seeded RNG) costs a few milliseconds of
Python, which is a large share of a stream of a few frames. A ``StudentPool`` builds a student once per
architecture, keeps its initial weights, and hands a student a finished stream gave back out again with those
weights loaded: the same values a new student has, so a stream's results are the same either way.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from odist.config import OdistConfig
from odist.distill.learning import new_student
from odist.models.jitnet import JITNet


def student_key(config: OdistConfig) -> tuple[Any, ...]:
    """What a new student's modules and initial weights depend on (``new_student``), and its device."""
    s = config.student
    return (len(config.classes), s.width, s.units, s.batch_stats_at_inference, s.fine_skips,
            s.running_stats_momentum, config.distill.seed, config.device, torch.get_default_dtype())


class StudentPool:
    """``take`` a student as ``new_student`` would build it; ``give_back`` one whose stream is over.

    Holds at most one idle student. Resetting replaces every parameter's and buffer's tensor by a copy of
    the initial one (never writing into the old tensors, which a finished stream's state may still share),
    drops gradients and sets training mode, as a new student has.
    """

    def __init__(self) -> None:
        self._initial: dict[tuple[Any, ...], dict[str, torch.Tensor]] = {}
        self._idle: tuple[tuple[Any, ...], JITNet] | None = None

    def take(self, config: OdistConfig) -> JITNet:
        """A student with the config's initial weights: the idle one reset, when it fits, else a new one."""
        key = student_key(config)
        idle, self._idle = self._idle, None
        if idle is not None and idle[0] == key:
            reset_student(idle[1], self._initial[key])
            return idle[1]
        student = new_student(config)
        if key not in self._initial:
            self._initial[key] = {name: t.detach().clone() for name, t in _tensors(student)}
        return student

    def give_back(self, config: OdistConfig, student: JITNet) -> None:
        """Keep ``student`` (whose stream is over: nothing uses it any more) for the next ``take``."""
        key = student_key(config)
        if key in self._initial:
            self._idle = (key, student)


def reset_student(student: torch.nn.Module, initial: dict[str, torch.Tensor]) -> None:
    """Give ``student`` the ``initial`` weights and buffers in new tensors, no gradients, training mode."""
    with torch.no_grad():
        for name, tensor in _tensors(student):
            tensor.data = initial[name].to(tensor.device, copy=True)
            tensor.grad = None
    student.train()


def _tensors(student: torch.nn.Module) -> itertools.chain[tuple[str, torch.Tensor]]:
    return itertools.chain(student.named_parameters(), student.named_buffers())
