"""Config files and overrides are bounded and checked before anything is built from them."""

from __future__ import annotations

import pytest
from hostile import alias_bomb

from odist.config import load_config
from odist.errors import ConfigError


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
