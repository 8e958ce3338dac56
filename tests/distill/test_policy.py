"""The keyframe policy: cut, confidence and empty-keyframe rules on top of the stride ladder."""


import numpy as np
import pytest
import torch
from policy_states import assert_same_state, serialised

from odist.config import DEFAULT_CLASSES, PAPER_KEYFRAME_POLICY, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.policy import KeyframePolicy, Trigger
from odist.distill.scene import scene_distance, scene_signature
from odist.models.teachers import build_teacher
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.frame import Frame
from odist.video.synthetic import SyntheticSource

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = ["student.width=0.25", "distill.lr=0.1"]
CUT = "distill.cut_threshold=0.1"


def config(*overrides: str):
    """The paper's loop plus the rules under test."""
    return load_config(None, [*PAPER_KEYFRAME_POLICY, *overrides], environ={})


class Scripted(Teacher):
    """Labels every frame with ``make(frame)`` and records which frames it labelled."""

    name = "scripted"

    def __init__(self, make) -> None:
        super().__init__(DEFAULT_CLASSES)
        self.make, self.calls = make, []

    def label(self, frames) -> TeacherResult:
        self.calls.extend(f.index for f in frames)
        return TeacherResult([Labels(self.make(f)) for f in frames], seconds=0.3, gflops=520.0)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return 520.0


def background(frame) -> np.ndarray:
    return np.zeros((frame.height, frame.width), np.uint8)


def a_person(frame) -> np.ndarray:
    labels = background(frame)
    labels[20:44, 40:52] = 1
    return labels


def scene(seed: int, height: int = 64, width: int = 96) -> np.ndarray:
    """A smooth random view: blocks of colour, so small shifts of noise do not change its signature."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((height // 4, width // 6, 1), np.uint8))


def still(image: np.ndarray, indices, noise: int = 3, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in indices:
        jitter = rng.integers(-noise, noise + 1, image.shape)
        frames.append(Frame(i, np.clip(image.astype(int) + jitter, 0, 255).astype(np.uint8), timestamp=i / 30))
    return frames


def test_signature_ignores_brightness_and_tint_but_sees_another_view():
    view = scene(1)
    darker = (view.astype(np.float32) * np.asarray([0.7, 0.8, 0.75])).astype(np.uint8)
    same = scene_distance(scene_signature(view), scene_signature(darker))
    other = scene_distance(scene_signature(view), scene_signature(scene(2)))
    assert same < 0.03 < 0.1 < other


def test_a_cut_triggers_a_keyframe_at_once_and_restarts_the_ladder():
    teacher = Scripted(background)
    distiller = OnlineDistiller(config(*SMALL, CUT), teacher)
    before = [distiller.step(f) for f in still(scene(1), range(60))]
    assert before[-1].stride > 8  # background is easy: the ladder climbed
    assert [r.trigger for r in before if r.keyframe] == ["ladder"] * sum(r.keyframe for r in before)
    cut = distiller.step(still(scene(2), [60])[0])
    assert cut.keyframe and cut.trigger == "cut" and teacher.calls[-1] == 60
    assert distiller.ladder.rung <= 1  # restarted from the lowest rung, then one move
    assert distiller.ledger.keyframes_by_trigger()["cut"] == 1


def test_a_static_stream_never_triggers():
    distiller = OnlineDistiller(config(*SMALL, CUT, "distill.confidence_drop=0.1"), Scripted(background))
    results = [distiller.step(f) for f in still(scene(1), range(120))]
    assert {r.trigger for r in results if r.keyframe} == {"ladder"}
    assert distiller.ledger.cut_keyframes == distiller.ledger.confidence_keyframes == 0


def test_moving_traffic_with_lighting_drift_is_no_cut():
    frames = list(SyntheticSource("traffic", width=96, height=64, frames=120, seed=3))
    distiller = OnlineDistiller(config(*SMALL, CUT), build_teacher("oracle", config().teacher, DEFAULT_CLASSES))
    results = [distiller.step(f) for f in frames]
    assert {r.trigger for r in results if r.keyframe} == {"ladder"}


def test_a_confidence_drop_triggers_a_keyframe(monkeypatch):
    teacher = Scripted(background)
    distiller = OnlineDistiller(config(*SMALL, "distill.confidence_drop=0.2"), teacher)
    levels = iter([0.95] * 5 + [0.6])
    monkeypatch.setattr("odist.distill.distiller.student_confidence", lambda logits, classes: next(levels))
    results = [distiller.step(f) for f in still(scene(1), range(7))]
    # frame 0: ladder; frame 1 sets the reference (0.95); frames 2-5 stay near it; frame 6 drops to 0.6.
    assert [r.index for r in results if r.keyframe] == [0, 6]
    assert results[6].trigger == "confidence"
    ledger = distiller.ledger
    assert ledger.confidence_keyframes == 1 and ledger.inferred_keyframes == 1 and ledger.frames == 7


def box(top: int, left: int, height: int = 64, width: int = 96) -> torch.Tensor:
    """The pixels a student calls foreground: a 20x12 box at (top, left)."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[top:top + 20, left:left + 12] = True
    return mask


def test_the_students_foreground_moving_since_the_keyframe_asks_for_the_teacher():
    policy = KeyframePolicy.from_config(config("distill.flip_threshold=0.5").distill)
    assert policy.after_inference(None, box(20, 40)) is None  # the reference after a keyframe
    assert policy.after_inference(None, box(20, 42)) is None  # moved 2 px: IoU 0.71
    assert policy.after_inference(None, box(20, 48)) == Trigger.FLIP  # moved 8 px: IoU 0.2
    policy.after_keyframe(10, Trigger.FLIP, threshold_met=True, empty=False)
    assert policy.after_inference(None, box(20, 48)) is None  # a new reference after the keyframe
    assert policy.after_inference(None, box(20, 50)) is None
    # no reading while neither map holds enough foreground
    empty = torch.zeros(64, 96, dtype=torch.bool)
    quiet = KeyframePolicy.from_config(config("distill.flip_threshold=0.5").distill)
    assert quiet.after_inference(None, empty) is None and quiet.after_inference(None, empty) is None
    paper = KeyframePolicy.from_config(config().distill)
    assert paper.after_inference(None, box(20, 40)) is None and paper.after_inference(None, box(40, 0)) is None


def test_flip_keyframes_are_counted(monkeypatch):
    distiller = OnlineDistiller(config(*SMALL, "distill.flip_threshold=0.5"), Scripted(a_person))
    boxes = iter([box(20, 40)] * 4 + [box(20, 60)])
    monkeypatch.setattr(distiller, "_infer", lambda image: (np.zeros((64, 96), np.uint8), None, next(boxes)))
    results = [distiller.step(f) for f in still(scene(1), range(6))]
    # frame 0: ladder; frame 1 sets the reference; frame 5's foreground has left it
    assert [(r.index, r.trigger) for r in results if r.keyframe] == [(0, "ladder"), (5, "flip")]
    assert distiller.ledger.keyframes_by_trigger()["flip"] == distiller.ledger.flip_keyframes == 1


def test_an_empty_keyframe_holds_the_rung_until_its_patience_runs_out():
    policy = KeyframePolicy.from_config(config("distill.empty_keyframes=hold", "distill.empty_patience=3").distill)
    strides = [policy.after_keyframe(i, Trigger.LADDER, threshold_met=True, empty=True) for i in range(5)]
    assert strides == [8, 8, 16, 16, 16]
    assert policy.after_keyframe(9, Trigger.LADDER, threshold_met=True, empty=False) == 32  # foreground climbs
    assert policy.after_keyframe(10, Trigger.LADDER, threshold_met=False, empty=True) == 16  # a failed test drops


def test_the_paper_climbs_on_empty_keyframes():
    policy = KeyframePolicy.from_config(config("distill.empty_keyframes=climb").distill)
    assert [policy.after_keyframe(i, Trigger.LADDER, True, True) for i in range(3)] == [16, 32, 64]


def test_empty_keyframes_are_counted_and_do_not_climb_in_a_stream():
    distiller = OnlineDistiller(config(*SMALL, "distill.empty_keyframes=hold", "distill.empty_patience=0"),
                                Scripted(background))
    results = [distiller.step(f) for f in still(scene(1), range(48))]
    assert {r.stride for r in results} == {8}
    assert distiller.ledger.empty_keyframes == distiller.ledger.keyframes == 6
    climbing = OnlineDistiller(config(*SMALL, "distill.empty_keyframes=hold"), Scripted(a_person))
    for f in still(scene(1), range(48)):
        climbing.step(f)
    assert climbing.ledger.empty_keyframes == 0


@pytest.mark.parametrize("learning", [[], ["distill.cut_ladder=recover", "distill.augment_zoom=0.2",
                                             "distill.replay_buffer_size=3", "distill.replay_samples=1",
                                             "distill.flip_threshold=0.3"],
                                      ["distill.flip_threshold=0.3", "distill.flip_contrast=2",
                                       "distill.boost_updates=12"]],
                         ids=["triggers", "recover-augment-replay-flip", "relative-flip-boost"])
def test_state_round_trip_with_the_triggers_on_continues_exactly(learning):
    frames = list(SyntheticSource("edited", width=96, height=64, frames=150, seed=1))
    cfg = config(*SMALL, CUT, "distill.confidence_drop=0.1", "distill.empty_keyframes=hold",
                 "distill.drift_threshold=0.1", *learning)
    teacher = build_teacher("oracle", cfg.teacher, DEFAULT_CLASSES)
    first = OnlineDistiller(cfg, teacher)
    for f in frames[:70]:
        first.step(f)
    second = OnlineDistiller(cfg, teacher)
    second.load_state_dict(serialised(first.state_dict()))
    a = [first.step(f) for f in frames[70:]]
    b = [second.step(f) for f in frames[70:]]
    assert any(r.trigger == "cut" for r in a)
    for x, y in zip(a, b, strict=True):
        assert (x.keyframe, x.trigger, x.updates, x.stride) == (y.keyframe, y.trigger, y.updates, y.stride)
        np.testing.assert_array_equal(x.prediction, y.prediction)
    counts = ("frames", "keyframes", "updates", "cut_keyframes", "drift_keyframes", "confidence_keyframes",
              "flip_keyframes", "empty_keyframes")
    assert_same_state(second.policy.state_dict(), first.policy.state_dict())
    assert [getattr(second.ledger, k) for k in counts] == [getattr(first.ledger, k) for k in counts]


def test_an_old_checkpoint_s_signatures_as_lists_load():
    cfg = config(*SMALL)
    distiller = OnlineDistiller(cfg, Scripted(background))
    signature = np.linspace(0, 2, 18 * 32 * 3, dtype=np.float32).reshape(18, 32, 3)
    state = distiller.state_dict()
    state["policy"] = {**state["policy"], "reference": signature.tolist(), "previous": signature.tolist()}
    distiller.load_state_dict(state)
    np.testing.assert_array_equal(distiller.policy.reference, signature)
    assert distiller.policy.reference.dtype == np.float32


def test_a_checkpoint_from_before_the_policy_loads():
    cfg = config(*SMALL)
    distiller = OnlineDistiller(cfg, Scripted(background))
    state = distiller.state_dict()
    del state["policy"]
    state["ladder"] = {"strides": [8, 16, 32, 64], "rung": 2, "next_keyframe": 40}
    distiller.load_state_dict(state)
    assert distiller.ladder.stride == 32 and distiller.policy.reference is None


def test_the_view_bank_gives_back_the_student_of_a_view_seen_before():
    cfg = config(*SMALL, CUT, "distill.view_bank_size=2")
    distiller = OnlineDistiller(cfg, Scripted(a_person))
    for f in still(scene(1), range(30)):
        distiller.step(f)
    first_view = {k: v.clone() for k, v in distiller.student.state_dict().items()}
    for f in still(scene(2), range(30, 60), seed=1):
        distiller.step(f)
    assert len(distiller.view_bank) == 2
    weights = distiller.view_bank.recall(scene_signature(still(scene(1), [0])[0].image))
    assert weights is not None
    for name, value in first_view.items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0, msg=name)
    # Back to the first view: the cut recalls its snapshot before learning from the keyframe.
    loaded = []
    original = distiller.student.load_state_dict
    distiller.student.load_state_dict = lambda state, **kw: loaded.append(state) or original(state, **kw)
    back = distiller.step(still(scene(1), [60], seed=2)[0])
    assert back.trigger == "cut" and distiller.ledger.view_recalls == 1
    assert len(loaded) == 1 and all(torch.equal(loaded[0][k], first_view[k]) for k in first_view)


def test_the_view_bank_keeps_at_most_its_size_and_drops_the_least_recently_used():
    cfg = config(*SMALL, CUT, "distill.view_bank_size=2")
    distiller = OnlineDistiller(cfg, Scripted(background))
    for view in (1, 2, 3):
        for f in still(scene(view), range(10 * view, 10 * view + 10)):
            distiller.step(f)
    bank = distiller.view_bank
    assert len(bank) == 2
    assert bank.recall(scene_signature(scene(1))) is None  # the oldest view went first
    assert bank.recall(scene_signature(scene(3))) is not None


def test_the_view_bank_drops_a_least_recently_used_view_that_is_not_its_oldest_entry():
    cfg = config(*SMALL, CUT, "distill.view_bank_size=2")
    distiller = OnlineDistiller(cfg, Scripted(background))
    for start, view in enumerate((1, 2, 1, 3)):  # back on view 1 before view 3: view 2 is the least recent
        for f in still(scene(view), range(10 * start, 10 * start + 10), seed=start):
            distiller.step(f)
    bank = distiller.view_bank
    assert len(bank) == 2
    assert bank.recall(scene_signature(scene(2))) is None
    assert bank.recall(scene_signature(scene(1))) is not None and bank.recall(scene_signature(scene(3))) is not None


def test_a_view_bank_needs_the_cut_threshold():
    from odist.errors import ConfigError

    with pytest.raises(ConfigError, match=r"distill\.view_bank_size"):
        config("distill.view_bank_size=2")


LONG = "distill.strides=[8,16,32,64,128,256]"


def a_small_person(frame) -> np.ndarray:
    labels = background(frame)
    labels[12:36, 24:36] = 1
    return labels


def test_a_fixed_camera_climbs_past_64_when_the_ladder_is_longer_and_resumes_there_exactly():
    """The shipped rules on a still view the student learns within a few keyframes: it climbs 8, 16, ...,
    64, then 128; a resume taken on the 64 rung climbs to 128 at the same frame with the same predictions."""
    frames = still(scene(3, 48, 64), range(150))
    cfg = load_config(None, ["student.width=0.25", "distill.lr=0.3", LONG], environ={})
    first = OnlineDistiller(cfg, Scripted(a_small_person))
    head = [first.step(f) for f in frames[:80]]
    assert first.ladder.stride == 64
    second = OnlineDistiller(cfg, Scripted(a_small_person))
    second.load_state_dict(serialised(first.state_dict()))
    a = [first.step(f) for f in frames[80:]]
    b = [second.step(f) for f in frames[80:]]
    keyframes = [r.index for r in head + a if r.keyframe]
    assert a[-1].stride == 128 and keyframes[-1] - keyframes[-2] == 64  # the next gap is 128 frames
    for x, y in zip(a, b, strict=True):
        assert (x.keyframe, x.trigger, x.updates, x.stride) == (y.keyframe, y.trigger, y.updates, y.stride)
        np.testing.assert_array_equal(x.prediction, y.prediction)
    assert_same_state(second.policy.state_dict(), first.policy.state_dict())
