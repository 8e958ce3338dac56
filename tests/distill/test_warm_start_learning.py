"""A warm-started student's first keyframes: the ladder rung it starts on and its learning rate."""

import pytest

from odist.config import load_config
from odist.distill.distiller import OnlineDistiller
from odist.models.teachers import build_teacher
from odist.video.synthetic import SyntheticSource

SMALL = ["student.width=0.25", "distill.lr=0.02"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def distiller(*overrides: str) -> OnlineDistiller:
    config = load_config(overrides=[*SMALL, *overrides], environ={})
    return OnlineDistiller(config, build_teacher("oracle", config.teacher, config.classes))


def lrs_of_keyframes(student: OnlineDistiller, frames: int = 40) -> list[float]:
    """The learning rate each keyframe of the first ``frames`` frames learned at."""
    seen = []
    for frame in SyntheticSource("traffic", width=96, height=64, frames=frames, seed=0):
        lr = student.learning_rate()
        if student.step(frame).keyframe:
            seen.append(lr)
            assert student.optimizer.param_groups[0]["lr"] == lr
    return seen


def test_a_warm_start_begins_on_the_configured_rung_and_scales_its_first_keyframes_learning_rate():
    warm = distiller("distill.warm_start_rung=2", "distill.warm_start_lr_scale=0.5",
                     "distill.warm_start_lr_keyframes=2", "distill.max_updates=1", "distill.strides=[2,4,8,16]")
    warm.load_state_dict(distiller().state_dict(), weights_only=True)
    assert warm.warm_started and warm.ladder.stride == 8
    lrs = lrs_of_keyframes(warm)
    assert lrs[:2] == [0.01, 0.01] and set(lrs[2:]) == {0.02} and len(lrs) > 2


def test_a_fresh_student_ignores_the_warm_start_settings():
    cold = distiller("distill.warm_start_rung=2", "distill.warm_start_lr_scale=0.5", "distill.max_updates=1",
                     "distill.strides=[2,4,8,16]")
    assert not cold.warm_started and cold.ladder.stride == 2
    assert set(lrs_of_keyframes(cold, 12)) == {0.02}


def test_a_resumed_warm_start_keeps_counting_its_scaled_keyframes():
    settings = ("distill.warm_start_lr_scale=0.5", "distill.warm_start_lr_keyframes=3", "distill.max_updates=1",
                "distill.strides=[2]")
    warm = distiller(*settings)
    warm.load_state_dict(distiller().state_dict(), weights_only=True)
    assert lrs_of_keyframes(warm, 3) == [0.01, 0.01]
    resumed = distiller(*settings)
    resumed.load_state_dict(warm.state_dict())
    assert resumed.warm_started and resumed.learning_rate() == 0.01
    resumed.ledger.keyframes += 1
    assert resumed.learning_rate() == 0.02


@pytest.mark.parametrize("override, fix", [("distill.warm_start_rung=4", "0 .. 3"),
                                           ("distill.warm_start_lr_scale=0", "positive")])
def test_bad_warm_start_settings_are_refused(override, fix):
    from odist.errors import ConfigError

    with pytest.raises(ConfigError, match=fix):
        load_config(overrides=[override], environ={})
