"""``odist plan`` through the CLI: the table, --json, errors, and flags that `odist run` accepts."""

from __future__ import annotations

import json
import shlex

import pytest

from odist.cli import _teacher_pool_config, build_parser, main
from odist.fleet.teacher_pool import TeacherPoolConfig
from odist.plan.capacity import DEFAULT_STUDENT_GPUS, DEFAULT_TEACHER_BATCH
from odist.plan.command import parse_resolution


def plan_json(capsys, *argv: str) -> dict:
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_table_output(capsys):
    assert main(["plan", "--cameras", "64", "--fps", "10", "--gpu", "a10g"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan: 64 cameras at 10 frames/s, 1280x720, on NVIDIA A10G")
    for text in ("GPU costs:", "keyframes:", "students per GPU", "replicas", "GPUs", "use:", "--teacher-replicas",
                 "minReplicas", "min_workers"):
        assert text in out, text


def test_estimates_are_labelled(capsys, tmp_path):
    assert main(["plan", "--cameras", "8", "--fps", "5", "--gpu", "t4", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "GPU costs: reference estimate, not measured" in out
    assert "keyframes: 0.1250 per frame" in out and "paper defaults" in out
    assert "note: t4 costs are estimates" in out


def test_json_matches_the_table_values(capsys):
    data = plan_json(capsys, "--cameras", "32", "--fps", "5", "--gpu", "l4", "--gpus-per-node", "4")
    teacher, values = data["teacher"], data["values"]
    assert values["odist_run"]["--teacher-replicas"] == f"{teacher['min_replicas']}:{teacher['max_replicas']}"
    assert values["odist_run"]["--workers"] == 32
    assert values["kuberay_gpu_group"]["maxReplicas"] == data["nodes"]["max"] == -(-data["gpus"]["max"] // 4)
    assert data["gpus"]["min"] == data["students"]["gpus"] + teacher["min_replicas"]
    assert data["request"]["student_gpus"] == DEFAULT_STUDENT_GPUS
    assert data["profile"]["source"] and data["workload"]["source"]


def test_resolution_and_keyframe_rate_flags(capsys):
    small = plan_json(capsys, "--cameras", "16", "--fps", "10", "--gpu", "a10g", "--resolution", "640x360")
    full = plan_json(capsys, "--cameras", "16", "--fps", "10", "--gpu", "a10g")
    assert small["students"]["ms_per_frame"] < full["students"]["ms_per_frame"]
    calm = plan_json(capsys, "--cameras", "16", "--fps", "2", "--gpu", "a10g", "--keyframe-rate", "0.05")
    busy = plan_json(capsys, "--cameras", "16", "--fps", "2", "--gpu", "a10g", "--keyframe-rate", "0.5")
    assert (calm["workload"]["keyframe_rate"], busy["workload"]["keyframe_rate"]) == (0.05, 0.5)
    assert busy["teacher"]["frames_per_second"] == pytest.approx(10 * calm["teacher"]["frames_per_second"])
    assert busy["students"]["ms_per_frame"] > calm["students"]["ms_per_frame"]


def test_plan_flags_are_accepted_by_odist_run(capsys):
    data = plan_json(capsys, "--cameras", "64", "--fps", "10", "--gpu", "a10g")
    flags = [str(v) for item in data["values"]["odist_run"].items() for v in item]
    args = build_parser().parse_args(["run", "cameras.jsonl", "--out", "s3://bucket/run", *flags])
    assert args.workers == 64 and args.device == "cuda"
    assert args.student_gpus == data["students"]["share"]
    pool = _teacher_pool_config(args)
    assert (pool.min_replicas, pool.max_replicas) == (data["teacher"]["min_replicas"], data["teacher"]["max_replicas"])


def test_printed_run_command_parses_into_the_planned_pool(capsys):
    plan = ["--cameras", "10", "--fps", "5", "--gpu", "h100"]
    data = plan_json(capsys, *plan)
    assert main(["plan", *plan]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("odist run ")]
    argv = shlex.split(line)[2:]
    args = build_parser().parse_args(["run", *argv])
    pool = _teacher_pool_config(args)
    assert pool.validate() is pool
    teacher = data["teacher"]
    assert (pool.min_replicas, pool.max_replicas, pool.max_batch_size, pool.num_gpus) == (
        teacher["min_replicas"], teacher["max_replicas"], teacher["batch"], teacher["gpus_per_replica"])
    assert (args.workers, args.student_gpus) == (10, data["students"]["share"])


def test_defaults_agree_with_odist_run():
    run_defaults = build_parser().parse_args(["run", "m.jsonl", "--out", "o"])
    assert run_defaults.teacher_batch == DEFAULT_TEACHER_BATCH == TeacherPoolConfig().max_batch_size
    plan_defaults = build_parser().parse_args(["plan", "--cameras", "1", "--fps", "1", "--gpu", "t4"])
    assert plan_defaults.student_gpus == DEFAULT_STUDENT_GPUS
    assert plan_defaults.teacher_batch == DEFAULT_TEACHER_BATCH


def test_unknown_gpu(capsys):
    assert main(["plan", "--cameras", "4", "--fps", "5", "--gpu", "b200"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("odist: error: unknown GPU type 'b200'")
    assert "a10g" in err and "h100" in err


@pytest.mark.parametrize("argv, message", [
    (["--cameras", "0", "--fps", "5"], "--cameras 0 is out of range"),
    (["--cameras", "4", "--fps", "-5"], "--fps -5 is out of range"),
    (["--cameras", "4", "--fps", "5", "--resolution", "720p"], "--resolution '720p' is not WIDTHxHEIGHT"),
    (["--cameras", "4", "--fps", "5", "--student-gpus", "2"], "--student-gpus 2 is out of range"),
    (["--cameras", "4", "--fps", "5", "--keyframe-rate", "2"], "--keyframe-rate 2 is not a fraction"),
    (["--cameras", "4", "--fps", "500"], "more than one GPU"),
])
def test_bad_numbers(capsys, argv, message):
    assert main(["plan", "--gpu", "a10g", *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_results_folder(capsys, tmp_path):
    assert main(["plan", "--cameras", "4", "--fps", "5", "--gpu", "t4", "--results", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_measured_profile_is_used(capsys, tmp_path):
    (tmp_path / "gpu_l4.json").write_text(json.dumps({
        "environment": {"device": "cuda", "cuda_device_name": "NVIDIA L4"}, "frame": {"width": 1280, "height": 720},
        "students": [{"width_multiplier": 1.0, "ms": 4.0, "update_ms": 16.0}], "teachers": [{"arch": "v1", "ms": 50.0}],
    }))
    data = plan_json(capsys, "--cameras", "8", "--fps", "5", "--gpu", "l4", "--results", str(tmp_path))
    assert data["profile"]["measured"] and data["profile"]["source"].startswith("measured: gpu_l4.json")
    assert data["students"]["ms_per_frame"] == pytest.approx(4.0 + 1.0 * 16.0)  # paper workload: 1 update/frame
    assert not any("estimates" in note for note in data["notes"])


def test_parse_resolution():
    assert parse_resolution("1920X1080") == (1920, 1080)
    with pytest.raises(Exception, match="WIDTHxHEIGHT"):
        parse_resolution("1920")
