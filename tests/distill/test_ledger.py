import math

from odist.config import CostModelConfig
from odist.distill.ledger import CostLedger


def test_cost_model_matches_paper_examples():
    model = CostModelConfig()
    stride64 = CostLedger(frames=64 * 100, keyframes=100, updates=100)
    assert 24 < stride64.speedup_cost_model(model) < 27  # "stride 64 with 1 update ~ 25x"
    stride8 = CostLedger(frames=800, keyframes=100, updates=800)
    assert 3.5 < stride8.speedup_cost_model(model) < 4.5  # "stride 8 with 8 updates ~ 4x"


def test_measured_speedup_uses_measured_teacher_time_per_frame():
    ledger = CostLedger(frames=10, keyframes=1, teacher_frames=1, teacher_seconds=1.0,
                        student_inference_seconds=0.9, student_update_seconds=0.1)
    assert math.isclose(ledger.speedup_measured(), 10 * 1.0 / 2.0)


def test_evaluation_cost_never_enters_speedup():
    a = CostLedger(frames=10, keyframes=1, teacher_frames=1, teacher_seconds=1.0, student_inference_seconds=1.0)
    b = CostLedger(**{**a.state_dict(), "evaluation_teacher_frames": 9, "evaluation_teacher_seconds": 9.0})
    assert a.speedup_measured() == b.speedup_measured()


def test_no_teacher_call_gives_nan_measured_speedup():
    assert math.isnan(CostLedger(frames=3, student_inference_seconds=1.0).speedup_measured())


def test_measured_speedup_charges_teacher_frames_at_the_given_device_cost():
    # An oracle charged 0.3 s per keyframe; on the student's device the teacher costs 2 s per frame.
    ledger = CostLedger(frames=10, keyframes=2, teacher_frames=2, teacher_seconds=0.6,
                        student_inference_seconds=0.8, student_update_seconds=0.2)
    assert math.isclose(ledger.speedup_measured(2.0), 10 * 2.0 / (1.0 + 2 * 2.0))
    assert ledger.speedup_measured(0.3) == ledger.speedup_measured()
