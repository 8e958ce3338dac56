"""GPU profiles (measured files over reference estimates) and the keyframe workload behind a plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odist.config import CostModelConfig, DistillConfig, StudentConfig
from odist.errors import ConfigError
from odist.plan.profiles import (
    DEFAULT_RESULTS_DIR,
    REFERENCE_GPUS,
    V100_TEACHER_MS,
    find_profile,
    load_profiles,
    reference_profile,
)
from odist.plan.workload import default_workload, measured_workload, paper_workload


def frame_cost(device: str = "cuda", **extra) -> dict:
    """A ``bench/frame_cost.py`` result as a GPU run writes it (only the fields the planner reads)."""
    return {"benchmark": "frame_cost", "environment": {"device": device, "cuda_device_name": "NVIDIA A10G"},
            "setup": "autocast bf16, channels_last on", "frame": {"width": 1280, "height": 720},
            "students": [{"width_multiplier": 0.5, "ms": 3.0, "update_ms": 9.0},
                         {"width_multiplier": 1.0, "ms": 5.0, "update_ms": 20.0}],
            "teachers": [{"arch": "v1", "ms": 60.0}, {"arch": "v2", "ms": 80.0}]} | extra


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def test_reference_profiles_are_labelled_estimates():
    paper = CostModelConfig()
    for name, (_, memory, speed) in REFERENCE_GPUS.items():
        profile = reference_profile(name)
        assert not profile.measured
        assert profile.source.startswith("reference estimate, not measured")
        assert profile.memory_gb == memory
        assert profile.student_inference_ms == pytest.approx(paper.student_inference_ms / speed)
        assert profile.student_update_ms == pytest.approx(paper.student_update_ms / speed)
        assert profile.teacher_ms == pytest.approx(V100_TEACHER_MS / speed)
    assert reference_profile("v100").student_inference_ms == paper.student_inference_ms


def test_empty_results_give_the_references(tmp_path):
    profiles = load_profiles(tmp_path)
    assert profiles == {name: reference_profile(name) for name in REFERENCE_GPUS}


def test_repository_results_are_measured_only_where_a_gpu_file_exists():
    measured = {path.stem.removeprefix("gpu_") for path in DEFAULT_RESULTS_DIR.glob("gpu_*.json")}
    for name, profile in load_profiles().items():
        assert profile.measured == (name in measured), name


def test_a_measured_file_replaces_the_reference(tmp_path):
    write(tmp_path, "gpu_a10g.json", frame_cost())
    profile = load_profiles(tmp_path)["a10g"]
    assert profile.measured
    assert profile.source.startswith("measured: gpu_a10g.json (NVIDIA A10G, autocast bf16")
    assert "GPU memory from the type's reference figure" in profile.source
    assert (profile.student_inference_ms, profile.student_update_ms, profile.teacher_ms) == (5.0, 20.0, 60.0)
    assert profile.memory_gb == REFERENCE_GPUS["a10g"][1]
    assert profile.label == "NVIDIA A10G"


def test_a_measured_new_type_needs_its_memory(tmp_path):
    write(tmp_path, "gpu_rtx4090.json", frame_cost())
    with pytest.raises(ConfigError, match="without a known memory size"):
        load_profiles(tmp_path)
    write(tmp_path, "gpu_rtx4090.json", frame_cost(gpu_memory_gb=24))
    profile = find_profile(load_profiles(tmp_path), "RTX4090")
    assert profile.memory_gb == 24 and "GPU memory from the file" in profile.source


@pytest.mark.parametrize("data", [frame_cost(device="cpu"), {"students": []}, [1, 2], "not json"])
def test_a_bad_gpu_file_is_a_config_error(tmp_path, data):
    path = tmp_path / "gpu_t4.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(ConfigError, match=r"gpu_t4\.json"):
        load_profiles(tmp_path)


def test_unknown_gpu_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown GPU type 'b200'") as info:
        find_profile(load_profiles(), "b200")
    assert all(name in info.value.fix for name in REFERENCE_GPUS)


def test_gpu_names_are_case_insensitive():
    assert find_profile(load_profiles(), " A10G ").name == "a10g"


# --- workload ---------------------------------------------------------------------------------------------


def accuracy_run(scenario: str, fraction: float, keyframes: int, updates: int, **distill) -> dict:
    config = {"distill": json.loads(json.dumps(DistillConfig().__dict__)) | distill,
              "student": dict(StudentConfig().__dict__)}
    return {"scenario": scenario, "schedule": "adaptive", "keyframe_fraction": fraction, "updates": updates,
            "config": config, "summary": {"keyframes": keyframes}}


def test_paper_workload_is_the_shortest_stride_with_every_update():
    workload = paper_workload()
    assert workload.keyframe_rate == workload.peak_keyframe_rate == 1 / 8
    assert workload.updates_per_keyframe == 8
    assert workload.updates_per_frame == 1.0
    assert workload.source.startswith("paper defaults")


def test_measured_workload_by_hand(tmp_path):
    write(tmp_path, "accuracy_vs_cost_a.json", {"runs": [
        accuracy_run("a", 0.10, 60, 300),
        {"scenario": "a", "schedule": "frozen", "keyframe_fraction": 0.01, "updates": 1},
    ]})
    write(tmp_path, "accuracy_vs_cost_b.json", {"runs": [accuracy_run("b", 0.04, 24, 60)]})
    write(tmp_path, "accuracy_vs_cost_b_lr.json", {"runs": [accuracy_run("b", 0.5, 300, 10, lr=0.05)]})
    paper_head = accuracy_run("b", 0.5, 300, 10)
    paper_head["config"]["student"]["fine_skips"] = False
    write(tmp_path, "accuracy_vs_cost_b_paper_head.json", {"runs": [paper_head]})
    workload = measured_workload(tmp_path)
    # Mean of 0.10 and 0.04: the lr=0.05 and paper-head runs do not use the defaults.
    assert workload.keyframe_rate == pytest.approx(0.07)
    assert workload.updates_per_keyframe == pytest.approx(360 / 84)
    assert workload.peak_keyframe_rate == 1 / 8
    assert workload.source.startswith("measured:") and "a, b" in workload.source


def test_default_workload_falls_back_to_the_paper(tmp_path):
    assert default_workload(tmp_path) == paper_workload()
    write(tmp_path, "accuracy_vs_cost_x.json", {"runs": "garbage"})
    assert default_workload(tmp_path) == paper_workload()


def test_repository_workload_is_measured():
    if not list(DEFAULT_RESULTS_DIR.glob("accuracy_vs_cost*.json")):
        pytest.skip("no accuracy_vs_cost results in this checkout")
    workload = default_workload()
    assert workload.source.startswith("measured:")
    assert 0 < workload.keyframe_rate <= workload.peak_keyframe_rate
    assert 1 <= workload.updates_per_keyframe <= DistillConfig().max_updates


def test_keyframe_rate_override(tmp_path):
    workload = default_workload(tmp_path, keyframe_rate=0.05)
    assert (workload.keyframe_rate, workload.peak_keyframe_rate, workload.updates_per_keyframe) == (0.05, 0.125, 8)
    assert workload.source.startswith("--keyframe-rate 0.05")
    assert default_workload(tmp_path, keyframe_rate=0.5).peak_keyframe_rate == 0.5


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5])
def test_bad_keyframe_rate(tmp_path, rate):
    with pytest.raises(ConfigError, match="--keyframe-rate"):
        default_workload(tmp_path, keyframe_rate=rate)
