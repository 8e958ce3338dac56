"""The student's FLOP counts: the same as counting the student itself, made once per architecture and size,
and never touching the student's weights, gradients or running statistics."""

import torch

from odist.distill import student_costs
from odist.models.flops import count_gflops
from odist.models.jitnet import jitnet


def test_counts_equal_a_direct_count_and_are_made_once(monkeypatch):
    monkeypatch.setattr(student_costs, "_COUNTS", {})
    student = jitnet(4, 0.25)
    expected = (count_gflops(student, 64, 96), count_gflops(student, 64, 96, backward=True))
    calls = []
    real = student_costs.count_gflops
    monkeypatch.setattr(student_costs, "count_gflops", lambda *a, **k: calls.append(a[1:]) or real(*a, **k))
    assert student_costs.student_gflops(student, 64, 96) == expected
    assert student_costs.student_gflops(jitnet(4, 0.25), 64, 96) == expected  # another student of that shape
    assert len(calls) == 2  # one inference count, one update count, for both students
    student_costs.student_gflops(student, 32, 48)
    student_costs.student_gflops(jitnet(4, 0.5), 64, 96)
    assert len(calls) == 6  # a new size, a new architecture: counted again


def test_counting_leaves_the_student_as_it_was(monkeypatch):
    monkeypatch.setattr(student_costs, "_COUNTS", {})
    student = jitnet(4, 0.25, batch_stats_at_inference=False)  # running statistics a forward pass would move
    student.eval()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    student_costs.student_gflops(student, 64, 64)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert all(p.grad is None for p in student.parameters()) and not student.training
