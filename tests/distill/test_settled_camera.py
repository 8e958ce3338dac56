"""Settled cameras: a long ladder's top rungs after passes in a row, and more updates on a stream's first keyframes."""


import numpy as np
import pytest
from policy_states import assert_same_state, serialised

from odist.config import DEFAULT_CLASSES, PAPER_KEYFRAME_POLICY, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.policy import KeyframePolicy, Trigger
from odist.errors import ConfigError
from odist.models.teachers import build_teacher
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.synthetic import SyntheticSource

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LONG = "distill.strides=[8,16,32,64,128,256]"
SETTLE = ("distill.settle_from=4", "distill.settle_passes=2")


def config(*overrides: str):
    return load_config(None, [*PAPER_KEYFRAME_POLICY, *overrides], environ={})


def moves(policy: KeyframePolicy, passes: list[bool]) -> list[int]:
    return [policy.after_keyframe(i, Trigger.LADDER, threshold_met=ok, empty=False) for i, ok in enumerate(passes)]


def test_a_fixed_camera_climbs_past_64_after_two_passes_in_a_row_on_each_top_rung():
    policy = KeyframePolicy.from_config(config(LONG, *SETTLE).distill)
    assert moves(policy, [True] * 8) == [16, 32, 64, 64, 128, 128, 256, 256]


def test_a_failed_test_drops_one_rung_and_restarts_the_count():
    policy = KeyframePolicy.from_config(config(LONG, *SETTLE).distill)
    strides = moves(policy, [True, True, True, True, False, True, True, True])
    # 64, then a pass and a failure at 64: down to 32; climbing back to 64 is below the settled rungs.
    assert strides == [16, 32, 64, 64, 32, 64, 64, 128]


def test_without_settling_the_long_ladder_climbs_on_every_pass():
    policy = KeyframePolicy.from_config(config(LONG).distill)
    assert moves(policy, [True] * 5) == [16, 32, 64, 128, 256]


def test_the_streak_is_saved_and_a_resumed_policy_climbs_at_the_same_keyframe():
    first = KeyframePolicy.from_config(config(LONG, *SETTLE).distill)
    moves(first, [True] * 4)  # at 64 with one pass counted
    second = KeyframePolicy.from_config(config(LONG, *SETTLE).distill)
    second.load_state_dict(serialised(first.state_dict()))
    assert second.pass_streak == first.pass_streak == 1
    assert moves(second, [True]) == moves(first, [True]) == [128]


class Noise(Teacher):
    """Labels no student fits: every keyframe spends its whole budget."""

    name = "noise"

    def __init__(self) -> None:
        super().__init__(DEFAULT_CLASSES)

    def label(self, frames) -> TeacherResult:
        maps = [np.random.default_rng(f.index).integers(0, 3, (f.height, f.width)).astype(np.uint8) for f in frames]
        return TeacherResult([Labels(m) for m in maps], seconds=0.3, gflops=520.0)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return 520.0


def test_the_first_keyframes_take_the_early_budget_and_a_resume_continues_the_count():
    cfg = config("student.width=0.25", "distill.early_keyframes=3", "distill.early_max_updates=10")
    frames = list(SyntheticSource("static_easy", width=48, height=32, frames=34, seed=0))
    first = OnlineDistiller(cfg, Noise())
    head = [first.step(f) for f in frames[:10]]  # keyframes 0 and 8
    second = OnlineDistiller(cfg, Noise())
    second.load_state_dict(serialised(first.state_dict()))
    a, b = [first.step(f) for f in frames[10:]], [second.step(f) for f in frames[10:]]
    assert [r.updates for r in head + a if r.keyframe] == [10, 10, 10, 8, 8]
    assert [r.updates for r in b if r.keyframe] == [r.updates for r in a if r.keyframe]
    assert first.ledger.updates == 3 * 10 + 2 * 8


def test_a_resume_with_settling_and_an_early_budget_continues_exactly():
    frames = list(SyntheticSource("static_easy", width=64, height=48, frames=90, seed=1))
    cfg = config("student.width=0.25", "distill.lr=0.1", LONG, "distill.settle_from=2", "distill.settle_passes=2",
                 "distill.early_keyframes=3", "distill.early_max_updates=12")
    teacher = build_teacher("oracle", cfg.teacher, DEFAULT_CLASSES)
    first = OnlineDistiller(cfg, teacher)
    for f in frames[:20]:
        first.step(f)
    second = OnlineDistiller(cfg, teacher)
    second.load_state_dict(serialised(first.state_dict()))
    a, b = [first.step(f) for f in frames[20:]], [second.step(f) for f in frames[20:]]
    assert sum(r.keyframe for r in a) >= 2
    for x, y in zip(a, b, strict=True):
        assert (x.keyframe, x.updates, x.stride) == (y.keyframe, y.updates, y.stride)
        np.testing.assert_array_equal(x.prediction, y.prediction)
    assert_same_state(second.policy.state_dict(), first.policy.state_dict())


@pytest.mark.parametrize(("override", "key"), [("distill.settle_from=6", "settle_from"),
                                               ("distill.settle_passes=0", "settle_passes"),
                                               ("distill.early_keyframes=-1", "early_keyframes")])
def test_bad_settings_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"distill\.{key}"):
        config(LONG, override)
