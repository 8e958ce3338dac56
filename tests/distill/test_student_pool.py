"""A pooled student is a new student: the config's initial weights in new tensors, no gradients, training mode."""

from __future__ import annotations

import torch

from odist.config import load_config
from odist.distill.learning import new_student
from odist.distill.student_pool import StudentPool

CONFIG = load_config(None, ["student.width=0.25", "threads=1"])


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def used(student: torch.nn.Module) -> None:
    """What a stream leaves on its student: moved weights and statistics, gradients, eval mode."""
    student.train()
    student(torch.randn(2, 3, 32, 32)).sum().backward()
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.5)
    student.eval()


def test_a_given_back_student_comes_back_as_new_student_builds_it():
    pool = StudentPool()
    first = pool.take(CONFIG)
    assert_same_weights(first, new_student(CONFIG))
    used(first)
    kept = {name: t.clone() for name, t in first.state_dict().items()}
    old_state = first.state_dict()  # a finished stream's state may still share the old tensors
    pool.give_back(CONFIG, first)
    again = pool.take(CONFIG)
    assert again is first
    assert_same_weights(again, new_student(CONFIG))
    assert again.training and all(m.training for m in again.modules())
    assert all(p.grad is None for p in again.parameters())
    for name, tensor in old_state.items():  # reset wrote new tensors, never into the old ones
        assert torch.equal(tensor, kept[name]), name


def test_a_student_of_another_architecture_or_seed_is_built_anew():
    pool = StudentPool()
    first = pool.take(CONFIG)
    pool.give_back(CONFIG, first)
    other = load_config(None, ["student.width=0.25", "threads=1", "distill.seed=7"])
    second = pool.take(other)
    assert second is not first
    assert_same_weights(second, new_student(other))
    assert pool.take(CONFIG) is not first  # taking empties the pool: one student is never handed out twice
