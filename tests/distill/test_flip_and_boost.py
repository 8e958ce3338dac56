"""The self-normalised flip trigger and the update boost after a change of view."""

import numpy as np
import pytest
import torch

from odist.config import DEFAULT_CLASSES, PAPER_KEYFRAME_POLICY, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.policy import KeyframePolicy, Trigger
from odist.errors import ConfigError
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.frame import Frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H, W = 64, 96
RELATIVE = ["distill.flip_threshold=0.3", "distill.flip_contrast=2"]


def config(*overrides: str):
    return load_config(None, [*PAPER_KEYFRAME_POLICY, *overrides], environ={})


def box(top: int, left: int) -> torch.Tensor:
    """The pixels a student calls foreground: a 20x12 box at (top, left)."""
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[top:top + 20, left:left + 12] = True
    return mask


def moving(policy: KeyframePolicy, frames: int, speed: int, stride: int = 8) -> list[Trigger | None]:
    """Feed a box that moves ``speed`` px a frame (an object that walks, or a camera that pans), with a
    keyframe every ``stride`` frames; the triggers."""
    triggers = []
    for i in range(frames):
        if i % stride == 0:
            policy.after_keyframe(i, Trigger.LADDER, threshold_met=False, empty=False)
        triggers.append(policy.after_inference(None, box(20, (speed * i) % (W - 12))))
    return triggers


def test_a_box_that_always_moves_keeps_the_relative_flip_quiet_where_the_absolute_one_fires():
    absolute = KeyframePolicy.from_config(config("distill.flip_threshold=0.3").distill)
    relative = KeyframePolicy.from_config(config(*RELATIVE).distill)
    assert Trigger.FLIP in moving(absolute, 64, speed=2)
    assert Trigger.FLIP not in moving(relative, 64, speed=2)
    pan = KeyframePolicy.from_config(config(*RELATIVE).distill)
    assert Trigger.FLIP not in moving(pan, 64, speed=3)


def test_a_view_change_under_a_calm_stream_fires_the_relative_flip():
    policy = KeyframePolicy.from_config(config(*RELATIVE).distill)
    calm = [policy.after_inference(None, box(20, 40 + i % 2)) for i in range(40)]  # a 1 px wobble
    assert Trigger.FLIP not in calm
    assert policy.after_inference(None, box(30, 10)) == Trigger.FLIP  # the student's answer moved at once
    policy.after_keyframe(41, Trigger.FLIP, threshold_met=True, empty=False)
    assert policy.after_inference(None, box(30, 10)) is None  # a new reference after the keyframe


def test_the_absolute_floor_holds_the_relative_flip_back_on_small_changes():
    policy = KeyframePolicy.from_config(config(*RELATIVE).distill)
    for _ in range(20):
        assert policy.after_inference(None, box(20, 40)) is None  # readings of 0
    assert policy.after_inference(None, box(20, 42)) is None  # 0.29: many times the median, under the floor


class Person(Teacher):
    name = "person"

    def __init__(self) -> None:
        super().__init__(DEFAULT_CLASSES)

    def label(self, frames) -> TeacherResult:
        out = []
        for f in frames:
            labels = np.zeros((f.height, f.width), np.uint8)
            labels[20:44, 40:52] = 1
            out.append(Labels(labels))
        return TeacherResult(out, seconds=0.3, gflops=520.0)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return 520.0


def test_the_boost_covers_the_first_keyframes_after_a_cut_or_drift_only():
    policy = KeyframePolicy.from_config(config("distill.boost_updates=12", "distill.boost_keyframes=2",
                                               "distill.max_updates=4").distill)
    assert policy.update_budget(Trigger.LADDER) == (0, 4)
    assert policy.update_budget(Trigger.CUT) == policy.update_budget("drift") == (12, 12)
    policy.after_keyframe(0, Trigger.CUT, threshold_met=False, empty=False)
    assert policy.update_budget(Trigger.LADDER) == (12, 12)  # the probe after the cut
    policy.after_keyframe(8, Trigger.LADDER, threshold_met=False, empty=False)
    assert policy.update_budget(Trigger.LADDER) == policy.update_budget(Trigger.FLIP) == (0, 4)
    off = KeyframePolicy.from_config(config("distill.max_updates=4").distill)
    assert off.update_budget(Trigger.CUT) == (0, 4)


def test_a_boosted_keyframe_learns_past_the_test_and_the_ledger_charges_its_updates(monkeypatch):
    # the student passes every keyframe's test at once, so only the boost makes it update
    monkeypatch.setattr("odist.distill.learning.min_class_iou", lambda confusion, min_pixels: 1.0)

    def stream(trigger: Trigger, *overrides: str) -> OnlineDistiller:
        distiller = OnlineDistiller(config("student.width=0.25", "distill.max_updates=2", *overrides), Person())
        image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
        frame = Frame(0, image, timestamp=0.0)
        distiller.learn(frame, distiller.teacher.label([frame]), trigger=trigger)
        return distiller

    assert stream(Trigger.CUT).ledger.updates == 0
    assert stream(Trigger.CUT, "distill.boost_updates=3").ledger.updates == 3
    assert stream(Trigger.LADDER, "distill.boost_updates=3").ledger.updates == 0


@pytest.mark.parametrize("override", ["distill.flip_contrast=0.5", "distill.boost_updates=-1",
                                      "distill.boost_keyframes=0"])
def test_bad_flip_contrast_or_boost_is_refused_in_one_line(override):
    with pytest.raises(ConfigError) as e:
        config(override)
    assert "\n" not in str(e.value) and override.split("=")[0].split(".")[1][:5] in str(e.value)
