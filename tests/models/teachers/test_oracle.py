import numpy as np
import pytest

from odist.config import DEFAULT_CLASSES, TeacherConfig
from odist.errors import ConfigError, TeacherError
from odist.models.teachers import build_teacher
from odist.models.teachers.oracle import OracleTeacher
from odist.video.frame import Frame


def _frame(index: int, with_truth: bool = True) -> Frame:
    image = np.zeros((8, 10, 3), dtype=np.uint8)
    truth = np.zeros((8, 10), dtype=np.uint8)
    truth[2:5, 3:7] = 2
    boxes = np.array([[2, 3, 2, 7, 5]], dtype=np.float32)
    return Frame(index=index, image=image, truth=truth if with_truth else None,
                 truth_boxes=boxes if with_truth else None)


def test_returns_truth_and_charges_configured_cost():
    config = TeacherConfig(charged_ms=250.0, charged_gflops=100.0)
    teacher = build_teacher("oracle", config, DEFAULT_CLASSES)
    assert isinstance(teacher, OracleTeacher)
    frames = [_frame(0), _frame(1)]
    result = teacher.label(frames)
    assert len(result.labels) == 2
    np.testing.assert_array_equal(result.labels[1].classes, frames[1].truth)
    np.testing.assert_array_equal(result.labels[1].boxes, frames[1].truth_boxes)
    assert result.seconds == pytest.approx(0.5) and result.gflops == pytest.approx(200.0)
    assert teacher.gflops_per_frame(720, 1280) == 100.0


def test_missing_truth_boxes_give_no_boxes():
    frame = _frame(0)
    frame = Frame(index=0, image=frame.image, truth=frame.truth)
    labels = OracleTeacher(TeacherConfig(), DEFAULT_CLASSES).label([frame]).labels[0]
    assert labels.boxes.shape == (0, 5)


def test_frame_without_truth_is_an_error_pointing_at_other_teachers():
    with pytest.raises(TeacherError, match=r"frame 7.*synthetic") as info:
        OracleTeacher(TeacherConfig(), DEFAULT_CLASSES).label([_frame(7, with_truth=False)])
    assert "maskrcnn" in str(info.value) and "replay" in str(info.value)


def test_oracle_takes_no_argument():
    with pytest.raises(ConfigError, match="no argument"):
        build_teacher("oracle:x", TeacherConfig(), DEFAULT_CLASSES)
