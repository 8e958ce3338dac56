"""The teacher registry and ``build_teacher``, which turns ``NAME[:ARG]`` into a teacher."""

from __future__ import annotations

from collections.abc import Sequence

from odist.config import PerformanceConfig, TeacherConfig
from odist.errors import ConfigError
from odist.models.teachers.base import Teacher
from odist.registry import Registry

# Builders are called as ``builder(arg, config, class_names, device)``; ``arg`` is None without ``:ARG``.
TEACHERS: Registry[Teacher] = Registry("teacher")


def build_teacher(spec: str, config: TeacherConfig, class_names: Sequence[str], device: str = "cpu",
                  performance: PerformanceConfig | None = None) -> Teacher:
    """Build the teacher named by ``spec``: ``NAME`` or ``NAME:ARG`` (e.g. ``replay:s3://bucket/prefix``).

    ``performance`` reaches teachers with a ``use_performance`` method (a model teacher's autocast).
    """
    import odist.models.teachers  # noqa: F401 - registers the built-in teachers

    name, sep, arg = spec.partition(":")
    name = name.strip()
    if name == "auto":
        raise ConfigError("teacher auto is chosen for an input before it is built",
                          "call odist.models.teachers.choice.teacher_for_input(config, uri) first")
    if not name:
        raise ConfigError(f"teacher spec {spec!r} names no teacher", f"write NAME or NAME:ARG with NAME one of: "
                          f"{', '.join(TEACHERS.names())}")
    builder = TEACHERS.get(name)
    teacher = builder(arg if sep else None, config, class_names, device)
    use_performance = getattr(teacher, "use_performance", None)
    if performance is not None and use_performance is not None:
        use_performance(performance)
    return teacher
