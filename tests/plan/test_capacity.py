"""The plan's arithmetic against hand computations, its monotonicity and its errors."""

from __future__ import annotations

import math

import pytest

from odist.errors import ConfigError
from odist.plan.capacity import PlanRequest, _share_for, make_plan, replica_throughput
from odist.plan.profiles import GpuProfile, reference_profile
from odist.plan.workload import Workload

# Round numbers, so every value below can be worked out by hand.
PROFILE = GpuProfile(name="test", label="Test GPU", memory_gb=24.0, student_inference_ms=10.0,
                     student_update_ms=40.0, teacher_ms=100.0, teacher_batch_marginal=0.5, source="test")
WORKLOAD = Workload(keyframe_rate=0.1, updates_per_keyframe=5.0, peak_keyframe_rate=0.125, source="test")


def plan(profile: GpuProfile = PROFILE, **overrides):
    request = PlanRequest(**({"cameras": 40, "fps": 10.0, "gpu": "test"} | overrides))
    return make_plan(request, profile, WORKLOAD)


def test_students_by_hand():
    s = plan().students
    # 0.1 keyframes x 5 updates = 0.5 updates per frame: 10 + 0.5 * 40 = 30 ms per frame
    assert s.ms_per_frame == pytest.approx(30.0)
    assert s.gpu_seconds_per_second == pytest.approx(0.3)  # 10 frames/s x 30 ms
    assert s.total_gpu_seconds_per_second == pytest.approx(12.0)  # 40 cameras
    assert s.peak_gpu_seconds_per_second == pytest.approx(10 * (10 + 0.125 * 5 * 40) / 1000)
    assert s.fit_compute == 2  # 1 / (0.3 x 1.25) = 2.67
    assert s.memory_gb == pytest.approx(1.5)
    assert s.fit_memory == 14  # 24 x 0.9 / 1.5 = 14.4
    assert s.fit_share == 8  # 1 / 0.125
    assert (s.per_gpu, s.limited_by) == (2, "compute")
    assert s.share == 0.5
    assert s.gpus == 20  # 40 / 2


def test_teacher_by_hand():
    t = plan().teacher
    assert t.frames_per_second == pytest.approx(40.0)  # 40 cameras x 10 frames/s x 0.1
    assert t.peak_frames_per_second == pytest.approx(50.0)  # x 0.125
    assert t.replica_frames_per_second == pytest.approx(8 / (0.1 * (1 + 0.5 * 7)))  # 17.8 frames/s
    assert (t.min_replicas, t.max_replicas) == (3, 4)  # ceil(40 x 1.25 / 17.8), ceil(50 x 1.25 / 17.8)
    assert t.memory_gb == pytest.approx(1.0 + 0.5 * 8)
    assert t.gpus_per_replica == 1.0


def test_totals_and_values_by_hand():
    p = plan(gpus_per_node=4)
    assert (p.min_gpus, p.max_gpus) == (23, 24)
    assert (p.min_nodes, p.max_nodes) == (6, 6)
    values = p.values()
    assert values["odist_run"] == {"--workers": 40, "--student-gpus": 0.5, "--teacher-replicas": "3:4",
                                   "--teacher-gpus": 1.0, "--teacher-batch": 8, "--device": "cuda"}
    assert values["kuberay_gpu_group"] == {"minReplicas": 6, "maxReplicas": 6, "nvidia.com/gpu": 4}
    assert values["ray_up_gpu_workers"] == {"min_workers": 6, "max_workers": 6}
    assert p.run_flags() == ("--workers 40 --student-gpus 0.5 --teacher-replicas 3:4 --teacher-gpus 1 "
                             "--teacher-batch 8 --device cuda")


def test_share_limits_when_compute_and_memory_allow_more():
    p = plan(fps=1.0)  # 0.03 GPU-s/s per camera: compute holds 26
    s = p.students
    assert (s.fit_compute, s.per_gpu, s.limited_by, s.share) == (26, 8, "share", 0.125)
    assert not any("--student-gpus" in note for note in p.notes)
    assert any("use --student-gpus 0.5" in note for note in plan().notes)


def test_memory_limits_on_a_small_gpu():
    small = GpuProfile(**(PROFILE.to_dict() | {"memory_gb": 8.0}))
    s = plan(fps=1.0, profile=small).students
    assert (s.fit_memory, s.per_gpu, s.limited_by, s.share) == (4, 4, "memory", 0.25)  # 7.2 / 1.5


def test_student_costs_scale_with_pixels():
    s = plan(width=640, height=360).students  # a quarter of the pixels
    assert s.inference_ms == pytest.approx(2.5)
    assert s.update_ms == pytest.approx(10.0)
    assert s.ms_per_frame == pytest.approx(7.5)
    assert s.memory_gb == pytest.approx(0.75)


def test_teacher_cost_does_not_depend_on_resolution():
    assert plan(width=640, height=360).teacher == plan().teacher


def test_batching_raises_replica_throughput():
    rates = [replica_throughput(PROFILE, batch) for batch in (1, 2, 4, 8)]
    assert rates[0] == pytest.approx(10.0)  # 1 / 100 ms
    assert rates == sorted(rates)


@pytest.mark.parametrize("per_gpu", range(1, 65))
def test_share_for_fits_exactly_that_many(per_gpu):
    share = _share_for(per_gpu)
    assert per_gpu * share <= 1.0
    assert (per_gpu + 1) * share > 1.0
    assert share == round(share, 4)  # Ray's resolution


def test_at_least_one_teacher_replica():
    p = plan(cameras=1, fps=0.1)
    assert p.teacher.min_replicas == p.teacher.max_replicas == 1


@pytest.mark.parametrize("gpu", ["t4", "a10g", "h100"])
def test_more_cameras_never_need_fewer_gpus(gpu):
    profile = reference_profile(gpu)
    previous = (0, 0, 0, 0)
    for cameras in range(1, 300, 7):
        p = make_plan(PlanRequest(cameras=cameras, fps=5.0, gpu=gpu), profile, WORKLOAD)
        current = (p.min_gpus, p.max_gpus, p.teacher.max_replicas, p.students.gpus)
        assert all(c >= b for c, b in zip(current, previous, strict=True)), (cameras, current, previous)
        previous = current


def test_higher_rates_never_need_fewer_gpus():
    profile = reference_profile("a10g")
    by_fps = [make_plan(PlanRequest(cameras=32, fps=fps, gpu="a10g"), profile, WORKLOAD).max_gpus
              for fps in (1, 2, 5, 10, 15)]
    assert by_fps == sorted(by_fps)
    by_rate = [make_plan(PlanRequest(cameras=32, fps=5, gpu="a10g"), profile,
                         Workload(rate, 5.0, max(rate, 0.125), "test")).max_gpus for rate in (0.01, 0.05, 0.1, 0.2)]
    assert by_rate == sorted(by_rate)


@pytest.mark.parametrize("overrides", [
    {"cameras": 0}, {"fps": 0.0}, {"fps": -1.0}, {"fps": math.inf}, {"width": 0}, {"student_gpus": 0.0},
    {"student_gpus": 1.5}, {"student_gpus": 0.001}, {"teacher_batch": 0}, {"headroom": 0.5}, {"gpus_per_node": 0},
])
def test_bad_numbers_are_config_errors(overrides):
    with pytest.raises(ConfigError, match="out of range"):
        plan(**overrides)


def test_a_camera_heavier_than_a_gpu_is_an_error():
    with pytest.raises(ConfigError, match="more than one GPU") as info:
        plan(fps=60.0)
    assert "--fps" in info.value.fix


def test_a_teacher_batch_larger_than_memory_is_an_error():
    with pytest.raises(ConfigError, match="teacher batch of 64") as info:
        plan(teacher_batch=64)
    assert "--teacher-batch" in info.value.fix


def test_plan_dict_holds_sources():
    data = plan().to_dict()
    assert data["profile"]["source"] == "test" and data["workload"]["source"] == "test"
    assert data["gpus"] == {"min": 23, "max": 23 + 1}
