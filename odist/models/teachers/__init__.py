"""Teachers that label keyframes; importing this package registers the built-in ones.

Mask R-CNN's module (and with it torchvision, 2-3 s to import) is imported when a ``maskrcnn`` teacher is
first built, not here: a student worker that asks a shared teacher pool, or an oracle or replay teacher,
never pays for it.
"""

from odist.models.teachers import detectron2, onnx_teacher, oracle, replay
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.models.teachers.registry import TEACHERS, build_teacher

TEACHERS.register_deferred("maskrcnn", "odist.models.teachers.maskrcnn")

__all__ = [
    "TEACHERS",
    "Labels",
    "Teacher",
    "TeacherResult",
    "build_teacher",
    "detectron2",
    "onnx_teacher",
    "oracle",
    "replay",
]
