"""The teacher's cost on the student's device: given, cached, measured once, and where it came from."""

import json
import math

import pytest

from odist.config import OdistConfig, TeacherConfig
from odist.models.teachers import device_cost
from odist.models.teachers.device_cost import cache_dir, cache_name, device_teacher_cost, measure_seconds_per_frame


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ODIST_CACHE", str(tmp_path))
    return tmp_path / "teacher-cost"


def unset_config() -> OdistConfig:
    return OdistConfig(teacher=TeacherConfig(name="oracle", device_ms=None))


def counting(monkeypatch, seconds: float) -> list[tuple]:
    calls: list[tuple] = []

    def measure(teacher, classes, device, height, width, **options):
        calls.append((device, height, width, teacher.arch))
        return seconds

    monkeypatch.setattr(device_cost, "measure_seconds_per_frame", measure)
    return calls


def test_measured_once_then_read_from_the_cache(cache, monkeypatch):
    calls = counting(monkeypatch, 2.5)
    first = device_teacher_cost(unset_config(), 48, 64, charged=0.3)
    second = device_teacher_cost(unset_config(), 48, 64, charged=0.3)
    assert calls == [("cpu", 48, 64, "v1")]
    assert (first.origin, second.origin) == ("measured", "cached")
    assert first.seconds_per_frame == second.seconds_per_frame == 2.5
    assert first.file == second.file and first.file.startswith(str(cache))
    assert json.loads((cache / cache_name("cpu", 48, 64, "v1")).read_text())["seconds_per_frame"] == 2.5
    assert second.charged_seconds_per_frame == 0.3


def test_the_cache_is_keyed_by_size_and_arch(cache, monkeypatch):
    calls = counting(monkeypatch, 1.0)
    device_teacher_cost(unset_config(), 48, 64)
    device_teacher_cost(unset_config(), 64, 48)
    v2 = OdistConfig(teacher=TeacherConfig(name="oracle", device_ms=None, arch="v2"))
    device_teacher_cost(v2, 48, 64)
    assert calls == [("cpu", 48, 64, "v1"), ("cpu", 64, 48, "v1"), ("cpu", 48, 64, "v2")]


def test_a_seeded_cache_is_used_and_a_broken_one_measured_again(cache, monkeypatch):
    calls = counting(monkeypatch, 4.0)
    cache.mkdir(parents=True)
    (cache / cache_name("cpu", 48, 64, "v1")).write_text(json.dumps({"seconds_per_frame": 7.5}))
    (cache / cache_name("cpu", 32, 32, "v1")).write_text("{not json")
    assert device_teacher_cost(unset_config(), 48, 64).seconds_per_frame == 7.5
    redone = device_teacher_cost(unset_config(), 32, 32)
    assert (redone.origin, redone.seconds_per_frame, len(calls)) == ("measured", 4.0, 1)


def test_the_runs_own_teacher_and_a_configured_figure_need_no_measurement(cache, monkeypatch):
    calls = counting(monkeypatch, 1.0)
    own = device_teacher_cost(unset_config(), 48, 64, ran_here=3.0)
    assert (own.origin, own.seconds_per_frame, own.charged_seconds_per_frame) == ("this run", 3.0, None)
    given = device_teacher_cost(OdistConfig(teacher=TeacherConfig(device_ms=1500.0)), 48, 64, charged=0.3)
    assert (given.origin, given.seconds_per_frame) == ("configured", 1.5)
    assert calls == [] and not cache.exists()


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ODIST_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "teacher-cost"
    monkeypatch.delenv("ODIST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "odist" / "teacher-cost"


def test_measuring_runs_the_configured_mask_rcnn(monkeypatch):
    monkeypatch.undo()  # the real measurement, on a tiny frame with a tiny internal resize
    config = OdistConfig()
    seconds = measure_seconds_per_frame(config.teacher, config.classes, "cpu", 24, 32, min_size=24, max_size=32,
                                        rpn_pre_nms_top_n_test=10, rpn_post_nms_top_n_test=10,
                                        box_detections_per_img=2)
    assert math.isfinite(seconds) and seconds > 0


def test_the_torch_version_is_a_plain_string_so_a_fleet_driver_unpickling_a_summary_needs_no_torch(cache):
    cost = device_teacher_cost(unset_config(), 48, 64, ran_here=3.0)
    assert type(cost.torch) is str  # torch.__version__ is a TorchVersion: unpickling one imports torch
