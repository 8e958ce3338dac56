"""An ONNX model's class names from its metadata: bounded and checked before a list is built from them."""

from __future__ import annotations

import pytest

from odist.errors import TeacherError
from odist.models.teachers.onnx_classes import MAX_CLASS_ID, model_class_names


def _names(text: str) -> list[str] | None:
    return model_class_names({"classes": text}, (), "ONNX model m.onnx")


def _refusal(text: str) -> str:
    with pytest.raises(TeacherError) as refused:
        _names(text)
    message = str(refused.value)
    assert "\n" not in message and "teacher.onnx_classes" in message
    return message


def test_ids_mappings_lists_and_commas_still_name_classes():
    assert _names('{0: "background", 2: "person"}') == ["background", "", "person"]
    assert _names('{"0": "background", "1": "person"}') == ["background", "person"]
    assert _names('["background", "person"]') == ["background", "person"]
    assert _names("background, person") == ["background", "person"]
    assert len(_names(f'{{0: "background", {MAX_CLASS_ID}: "person"}}')) == MAX_CLASS_ID + 1


@pytest.mark.parametrize(("text", "expected"), [
    ('{0: "background", 99999999999: "person"}', "class id 99999999999, outside 0..65535"),
    ('{-1: "background", 0: "person"}', "class id -1, outside 0..65535"),
    ('{"a": "background"}', "maps non-integer ids to names"),
    ("[" * 100_000 + "]" * 100_000, "is nested too deeply to read"),
    ('{0: "b", 1: ' + "[" * 100_000 + "]" * 100_000 + "}", "neither a JSON list nor an {id: name} mapping"),
    ("{0: " * 100_000 + "1" + "}" * 100_000, "neither a JSON list nor an {id: name} mapping"),
    ('[["a", "b"], "c"]', "a class name that is not text"),
    ('{0: "background", 1: ["person"]}', "a class name that is not text"),
])
def test_hostile_metadata_is_one_clear_line(text, expected):
    assert expected in _refusal(text)


def test_too_many_names_are_refused():
    assert "more than odist reads" in _refusal(",".join(["x"] * (MAX_CLASS_ID + 2)))
