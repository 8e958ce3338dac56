"""The teacher registry: Mask R-CNN's torchvision is imported only where a Mask R-CNN teacher is built."""

from __future__ import annotations

import pytest
from fresh import fresh_process

from odist.registry import Registry


def test_a_student_process_with_an_oracle_teacher_never_imports_torchvision():
    assert fresh_process(
        "import sys; import odist.fleet.student_actor, odist.distill.pipeline; "
        "from odist.config import load_config; from odist.models.teachers import TEACHERS, build_teacher; "
        "c = load_config(environ={}); build_teacher('oracle', c.teacher, c.classes); "
        "assert 'maskrcnn' in TEACHERS.names(); print('torchvision' in sys.modules)") == "False"


def test_building_a_deferred_teacher_imports_its_module_and_uses_its_builder():
    assert fresh_process(
        "import sys, warnings; warnings.simplefilter('ignore'); from odist.config import load_config; "
        "from odist.models.teachers import build_teacher; "
        "c = load_config(environ={}, overrides=['teacher.weights=random']); "
        "t = build_teacher('maskrcnn:min_size=64,max_size=96', c.teacher, c.classes); "
        "print(type(t).__name__, 'torchvision' in sys.modules)") == "MaskRCNNTeacher True"


def test_a_deferred_name_is_replaced_once_by_its_module_and_then_guarded():
    registry: Registry[str] = Registry("thing")
    registry.register_deferred("json-thing", "json")  # json registers nothing: get() says which module failed
    with pytest.raises(RuntimeError, match="json did not register"):
        registry.get("json-thing")()
    registry.register("json-thing")(lambda: "real")
    assert registry.get("json-thing")() == "real"
    with pytest.raises(ValueError, match="already registered"):
        registry.register("json-thing")(lambda: "again")
    assert registry.names() == ["json-thing"]
