"""The teacher a live run uses: the default is Mask R-CNN (COCO weights unless others are set)."""

from __future__ import annotations

import pytest

from odist.config import load_config
from odist.errors import ConfigError
from odist.live.teacher_choice import live_teacher


def test_the_default_teacher_is_maskrcnn_with_coco_weights_or_those_configured():
    chosen = live_teacher(load_config(environ={}))
    assert (chosen.teacher.name, chosen.teacher.weights) == ("maskrcnn", "torchvision")
    chosen = live_teacher(load_config(overrides=["teacher.weights=random"], environ={}))
    assert (chosen.teacher.name, chosen.teacher.weights) == ("maskrcnn", "random")


def test_a_chosen_live_teacher_is_kept():
    config = load_config(overrides=["teacher.name=detectron2"], environ={})
    assert live_teacher(config) is config


@pytest.mark.parametrize("overrides", [["teacher.name=oracle"], ["teacher.name=maskrcnn"]])
def test_the_oracle_or_no_weights_is_one_line_naming_what_to_pass(overrides):
    with pytest.raises(ConfigError, match=r"--set teacher\.weights=PATH_OR_URI") as refused:
        live_teacher(load_config(overrides=overrides, environ={}))
    assert "\n" not in str(refused.value)
