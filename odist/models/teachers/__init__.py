"""Teachers that label keyframes; importing this package registers the built-in ones."""

from odist.models.teachers import detectron2, maskrcnn, onnx_teacher, oracle, replay
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.models.teachers.registry import TEACHERS, build_teacher

__all__ = [
    "TEACHERS",
    "Labels",
    "Teacher",
    "TeacherResult",
    "build_teacher",
    "detectron2",
    "maskrcnn",
    "onnx_teacher",
    "oracle",
    "replay",
]
