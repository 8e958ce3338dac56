"""Config files and overrides are bounded and checked before anything is built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
from hostile import alias_bomb

from odist.config import load_config
from odist.config_parse import build
from odist.errors import ConfigError


@dataclass
class NewSection:
    """A section with hints the config did not have before: each is checked, none passes unchecked."""

    ratios: tuple[float, ...] = (0.5,)
    mode: Literal["fast", "exact"] = "fast"
    limits: dict[str, int] = field(default_factory=dict)
    sizes: list[int] | None = None


def test_nested_yaml_aliases_are_refused_before_they_are_expanded(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(5))  # 9 ** 5 = 59,049 names once expanded
    assert path.stat().st_size < 600
    with pytest.raises(ConfigError, match="holds more than 10000 values"):
        load_config(path, environ={})


def test_a_few_reused_aliases_are_still_a_config(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("teacher:\n  class_groups:\n    person: &p [person]\n    vehicle: [car, bus]\n"
                    "  onnx_classes: *p\n")
    config = load_config(path, environ={})
    assert config.teacher.class_groups["person"] == ["person"] and config.teacher.onnx_classes == ("person",)


@pytest.mark.parametrize("groups", ['{"person": [["person"]]}', '{"person": [{"a": "b"}]}'])
def test_class_group_members_must_be_names(groups):
    with pytest.raises(ConfigError, match=r"teacher\.class_groups"):
        load_config(overrides=[f"teacher.class_groups={groups}"], environ={})


def test_a_config_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("distill: {lr: 0.1}  # réglé\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 23\)") as refused:
        load_config(path, environ={})
    assert refused.value.fix == "save it as UTF-8 YAML or JSON"


def test_a_utf8_config_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffdistill: {lr: 0.1}\n".encode())
    assert load_config(path, environ={}).distill.lr == 0.1


@pytest.mark.parametrize(("override", "expected"), [
    ("distill.lr=1e308", "a positive learning rate up to 10"),
    ("distill.lr=inf", "expected a finite number"),
    ("distill.lr=1e999", "expected a finite number"),
    ("distill.lr=nan", "expected a finite number"),
    ("teacher.charged_ms=Infinity", "expected a finite number"),
    ("distill.warm_start_lr_scale=1e6", "distill.warm_start_lr_scale"),
    ("threads=1e999", "expected a whole number"),
])
def test_learning_rates_and_numbers_must_be_finite_and_bounded(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(overrides=[override], environ={})


def test_an_override_nested_past_the_bound_is_refused_without_recursing():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ConfigError, match="nests deeper than 16 levels"):
        load_config(overrides=[f"distill.strides={deep}"], environ={})
    with pytest.raises(ConfigError, match="nests deeper than 16 levels"):
        load_config(overrides=["distill.strides=" + "[" * 40 + "]" * 40], environ={})


@pytest.mark.parametrize(("data", "expected"), [
    ({"ratios": ["x"]}, "invalid config value for new.ratios: ['x'] (expected a list of numbers)"),
    ({"ratios": "0.5,inf"}, "invalid config value for new.ratios: '0.5,inf' (expected a finite number)"),
    ({"mode": "slow"}, "invalid config value for new.mode: 'slow' (expected 'fast' or 'exact')"),
    ({"limits": {"a": 1.5}}, "invalid config value for new.limits: {'a': 1.5} (expected a valid integer"),
    ({"limits": {"a": "x"}}, "at ['a'])"),
    ({"sizes": [1, True]}, "new.sizes: [1, True]"),
    ({"speed": 1}, "unknown config key new.speed (known keys here: limits, mode, ratios, sizes)"),
])
def test_a_hint_the_config_never_had_is_checked_in_one_line(data, expected):
    with pytest.raises(ConfigError) as refused:
        build(NewSection, data, "new.")
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_a_hint_the_config_never_had_takes_values_from_text_as_the_others_do():
    built = build(NewSection, {"ratios": "0.5,0.25", "mode": "exact", "limits": {"a": "3"}, "sizes": "null"}, "new.")
    assert built == NewSection(ratios=(0.5, 0.25), mode="exact", limits={"a": 3}, sizes=None)
    assert build(NewSection, {"sizes": [8, 16]}, "new.").sizes == [8, 16]


@pytest.mark.parametrize(("override", "expected"), [
    ("threads=abc", "expected a whole number"), ("threads=1.5", "expected a whole number"),
    ("threads=true", "expected a whole number"), ("student.width=false", "expected a number"),
    ("fleet.workers=many", "expected a whole number or null"), ("device=0", "expected a string"),
    ("teacher.weights=[1]", "expected a string or null"), ("distill.strides=[8,16.5]", "a list of whole numbers"),
])
def test_values_of_the_wrong_type_are_refused_whatever_their_source(override, expected, tmp_path):
    key, _, value = override.partition("=")
    env = {"ODIST__" + key.upper().replace(".", "__"): value}
    for refused_by in (lambda: load_config(overrides=[override], environ={}), lambda: load_config(environ=env)):
        with pytest.raises(ConfigError, match=f"invalid config value for {key}: .*{expected}"):
            refused_by()


def test_text_from_the_environment_and_overrides_becomes_each_fields_type():
    config = load_config(overrides=["fleet.workers=none", "performance.compile=YES", "classes=background,1"],
                         environ={"ODIST__DISTILL__STRIDES": "8,16", "ODIST__SOURCE__FPS": "null",
                                  "ODIST__DISTILL__MAX_UPDATES": "2.0", "ODIST__TEACHER__CLASS_GROUPS": '{"1": [7]}'})
    assert (config.fleet.workers, config.performance.compile, config.classes) == (None, True, ("background", "1"))
    assert (config.distill.strides, config.source.fps, config.distill.max_updates) == ((8, 16), None, 2)
    assert config.teacher.class_groups == {"1": ["7"]}
