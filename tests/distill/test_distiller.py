
import numpy as np
import pytest
import torch
from policy_states import serialised

from odist.config import DEFAULT_CLASSES, PAPER_KEYFRAME_POLICY, load_config
from odist.distill import learning as learning_module
from odist.distill.distiller import FrameResult, OnlineDistiller
from odist.distill.metrics import confusion, mean_iou
from odist.models.teachers import build_teacher
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.synthetic import SyntheticSource

SMALL = ["student.width=0.25"]
# A learning rate at which a fresh student learns an all-background map within one keyframe's budget.
FAST = [*SMALL, "distill.lr=0.1"]
THRESHOLD = 0.8
MAX_UPDATES = 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def frames():
    return list(SyntheticSource("static_easy", width=96, height=64, frames=200, seed=0))


class ScriptedTeacher(Teacher):
    """Labels each frame with ``make(frame)``; remembers which frames it was asked about."""

    name = "scripted"

    def __init__(self, make) -> None:
        super().__init__(DEFAULT_CLASSES)
        self.make = make
        self.calls: list[int] = []

    def label(self, frames) -> TeacherResult:
        self.calls.extend(f.index for f in frames)
        labels = [Labels(self.make(f)) for f in frames]
        return TeacherResult(labels, seconds=0.3 * len(frames), gflops=520.0 * len(frames))

    def gflops_per_frame(self, height: int, width: int) -> float:
        return 520.0


def background(frame) -> np.ndarray:
    return np.zeros((frame.height, frame.width), np.uint8)


def noise(frame) -> np.ndarray:
    rng = np.random.default_rng(frame.index)
    return rng.integers(0, len(DEFAULT_CLASSES), (frame.height, frame.width)).astype(np.uint8)


def config(*overrides: str):
    """The paper's keyframe loop (every trigger off, ladder 8..64), which these tests check rule by rule."""
    return load_config(None, [*PAPER_KEYFRAME_POLICY, *overrides], environ={})


def run(distiller: OnlineDistiller, frames) -> list[FrameResult]:
    return [distiller.step(f) for f in frames]


def keyframes(results: list[FrameResult]) -> list[FrameResult]:
    return [r for r in results if r.keyframe]


def weights_of(distiller: OnlineDistiller) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in distiller.student.state_dict().items()}


def check_schedule(results: list[FrameResult], strides=(8, 16, 32, 64), signal: str = "after_updates") -> None:
    """Every frame obeys the paper's rules: early stop, budget, one rung per keyframe, stride spacing."""
    rung = 0
    next_keyframe = 0
    for r in results:
        assert r.keyframe == (r.index >= next_keyframe)
        if not r.keyframe:
            assert r.updates == 0 and r.keyframe_accuracy is None and r.teacher_labels is None
            assert r.stride == strides[rung]
            continue
        before, after = r.accuracy_before_updates, r.keyframe_accuracy
        assert 0 <= r.updates <= MAX_UPDATES
        assert (r.updates == 0) == (before > THRESHOLD)
        if r.updates < MAX_UPDATES:
            assert after > THRESHOLD
        else:
            assert r.updates == MAX_UPDATES
        met = (before if signal == "before_updates" else after) > THRESHOLD
        rung = min(rung + 1, len(strides) - 1) if met else max(rung - 1, 0)
        assert r.stride == strides[rung]
        next_keyframe = r.index + r.stride


# -- stride ladder and early stop -----------------------------------------------------------------


def test_learnable_labels_climb_the_ladder_with_early_stops(frames):
    teacher = ScriptedTeacher(background)
    results = run(OnlineDistiller(config(*FAST), teacher), frames)
    keys = keyframes(results)
    # Each success moves one rung up, and the next keyframe comes one new stride later.
    assert [r.index for r in keys] == [0, 16, 48, 112, 176]
    assert [r.stride for r in keys] == [16, 32, 64, 64, 64]
    assert teacher.calls == [0, 16, 48, 112, 176]
    assert all(r.keyframe_accuracy > THRESHOLD for r in keys)
    # The fresh student misses the first keyframe, then fits it before the budget runs out.
    first = keys[0]
    assert first.accuracy_before_updates <= THRESHOLD
    assert 0 < first.updates < MAX_UPDATES
    # Once learnt, a keyframe the student already gets right needs no update at all.
    assert any(r.updates == 0 and r.accuracy_before_updates > THRESHOLD for r in keys[1:])
    check_schedule(results)
    # The keyframe's prediction is the fitted one: all background.
    assert not first.prediction.any()
    assert first.prediction.dtype == np.uint8 and first.prediction.shape == (64, 96)


def test_unlearnable_labels_spend_the_whole_budget_at_the_lowest_stride(frames):
    teacher = ScriptedTeacher(noise)
    distiller = OnlineDistiller(config(*SMALL), teacher)
    results = run(distiller, frames[:40])
    keys = keyframes(results)
    assert [r.index for r in keys] == [0, 8, 16, 24, 32]
    assert [r.updates for r in keys] == [MAX_UPDATES] * 5
    assert {r.stride for r in results} == {8}
    assert all(r.keyframe_accuracy <= THRESHOLD for r in keys)
    assert distiller.ledger.updates == 5 * MAX_UPDATES
    check_schedule(results)


def test_before_updates_signal_moves_the_ladder_on_the_unseen_accuracy(frames):
    teacher = ScriptedTeacher(background)
    results = run(OnlineDistiller(config(*FAST, "distill.stride_signal=before_updates"), teacher), frames)
    keys = keyframes(results)
    first = keys[0]
    # Fitted after its updates, but the fresh student got it wrong: the stride stays at 8.
    assert first.accuracy_before_updates <= THRESHOLD < first.keyframe_accuracy
    assert first.stride == 8
    assert [r.index for r in keys] == [0, 8, 24, 56, 120, 184]
    check_schedule(results, signal="before_updates")


def test_custom_ladder(frames):
    teacher = ScriptedTeacher(background)
    results = run(OnlineDistiller(config(*FAST, "distill.strides=[4,10]"), teacher), frames[:60])
    assert [r.index for r in keyframes(results)] == [0, 10, 20, 30, 40, 50]
    check_schedule(results, strides=(4, 10))


# -- budgets --------------------------------------------------------------------------------------


def test_zero_max_updates_never_changes_the_weights(frames):
    teacher = build_teacher("oracle", config().teacher, DEFAULT_CLASSES)
    distiller = OnlineDistiller(config(*SMALL, "distill.max_updates=0"), teacher)
    start = weights_of(distiller)
    results = run(distiller, frames[:40])
    assert all(r.updates == 0 for r in results)
    assert distiller.ledger.updates == 0 and distiller.ledger.keyframes == 5
    for name, value in weights_of(distiller).items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=0, msg=name)
    # The prediction of an unchanged student on a frame is the same whether or not it is a keyframe.
    again = OnlineDistiller(config(*SMALL, "distill.max_updates=0"), teacher)
    again.load_state_dict({"student": start}, weights_only=True)
    np.testing.assert_array_equal(again.step(frames[3]).prediction, results[3].prediction)


def test_freeze_after_keyframes_stops_asking_the_teacher(frames):
    teacher = ScriptedTeacher(noise)
    distiller = OnlineDistiller(config(*SMALL, "distill.freeze_after_keyframes=2"), teacher)
    results = run(distiller, frames[:9])
    frozen = weights_of(distiller)
    results += run(distiller, frames[9:60])
    assert teacher.calls == [0, 8]
    assert [r.index for r in keyframes(results)] == [0, 8]
    assert distiller.ledger.keyframes == distiller.ledger.teacher_frames == 2
    assert all(r.updates == 0 and r.teacher_labels is None for r in results[9:])
    for name, value in weights_of(distiller).items():
        torch.testing.assert_close(value, frozen[name], rtol=0, atol=0, msg=name)


# -- cost ledger ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "costs"), [
    ([], (300.0, 7.0, 30.0)),
    (["cost_model.teacher_ms=100", "cost_model.student_inference_ms=2", "cost_model.student_update_ms=50"],
     (100.0, 2.0, 50.0)),
])
def test_ledger_counts_what_the_frames_say(frames, overrides, costs):
    cfg = config(*SMALL, *overrides)
    teacher = build_teacher("oracle", cfg.teacher, DEFAULT_CLASSES)
    distiller = OnlineDistiller(cfg, teacher)
    results = run(distiller, frames[:72])
    ledger = distiller.ledger
    n = len(results)
    k = sum(r.keyframe for r in results)
    u = sum(r.updates for r in results)
    assert (ledger.frames, ledger.keyframes, ledger.updates, ledger.teacher_frames) == (n, k, u, k)
    assert 0 < k < n and u > 0
    assert ledger.teacher_seconds == pytest.approx(sum(r.teacher_seconds for r in results))
    assert ledger.teacher_seconds == pytest.approx(k * cfg.teacher.charged_ms / 1000)
    assert ledger.teacher_gflops == pytest.approx(k * cfg.teacher.charged_gflops)
    assert ledger.student_inference_gflops == pytest.approx((n - k) * distiller.student_gflops_per_frame)
    assert ledger.evaluation_teacher_frames == 0
    # The paper's cost model: N*T / ((N-K)*S + K*T + U*U_cost).
    t, s, c = costs
    expected = n * t / ((n - k) * s + k * t + u * c)
    assert ledger.speedup_cost_model(cfg.cost_model) == pytest.approx(expected)


# -- learning -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_student_learns_the_scene_from_the_oracle(seed):
    cfg = config(*SMALL, f"distill.seed={seed}")
    distiller = OnlineDistiller(cfg, build_teacher("oracle", cfg.teacher, DEFAULT_CLASSES))
    untrained = OnlineDistiller(cfg, build_teacher("oracle", cfg.teacher, DEFAULT_CLASSES))
    learned, never = [], []
    for frame in SyntheticSource("static_easy", width=128, height=72, frames=200, seed=seed):
        result = distiller.step(frame)
        if frame.index >= 150:
            learned.append(confusion(result.prediction, frame.truth, len(DEFAULT_CLASSES)))
            never.append(confusion(untrained.infer(frame).prediction, frame.truth, len(DEFAULT_CLASSES)))
    late, baseline = mean_iou(sum(learned)), mean_iou(sum(never))
    assert late > baseline + 0.25, (baseline, late)
    assert late > 0.6


# -- replay buffer --------------------------------------------------------------------------------


def _loss_calls(monkeypatch) -> list[tuple[int, float]]:
    """Records (batch size, soft-IoU weight) of every update's loss from now on."""
    calls: list[tuple[int, float]] = []
    loss = learning_module.distillation_loss

    def recording(logits, target, weights, iou_weight=0.0):
        calls.append((int(logits.shape[0]), iou_weight))
        return loss(logits, target, weights, iou_weight)

    monkeypatch.setattr(learning_module, "distillation_loss", recording)
    return calls


def test_replay_buffer_keeps_recent_keyframes_and_samples_them(frames, monkeypatch):
    calls = _loss_calls(monkeypatch)
    cfg = config(*SMALL, "distill.replay_buffer_size=4", "distill.replay_samples=2")
    distiller = OnlineDistiller(cfg, ScriptedTeacher(noise))
    results = run(distiller, frames[:48])
    sizes = [size for size, _ in calls]
    assert [r.index for r in keyframes(results)] == [0, 8, 16, 24, 32, 40]
    assert len(distiller._replay) == 4
    # Keyframe 1 trains alone, keyframe 2 with the one stored example, later ones with two samples.
    per_keyframe = [sizes[i:i + MAX_UPDATES] for i in range(0, len(sizes), MAX_UPDATES)]
    assert [set(s) for s in per_keyframe] == [{1}, {2}, {3}, {3}, {3}, {3}]
    assert all(r.prediction.shape == (64, 96) for r in results)


def test_no_replay_by_default(frames, monkeypatch):
    calls = _loss_calls(monkeypatch)
    distiller = OnlineDistiller(config(*SMALL), ScriptedTeacher(noise))
    run(distiller, frames[:17])
    assert [size for size, _ in calls] == [1] * (3 * MAX_UPDATES)
    assert len(distiller._replay) == 0


@pytest.mark.parametrize("overrides, expected", [((), 1.0), (("distill.iou_loss_weight=0",), 0.0)])
def test_updates_use_the_configured_soft_iou_weight(frames, monkeypatch, overrides, expected):
    calls = _loss_calls(monkeypatch)
    run(OnlineDistiller(config(*SMALL, *overrides), ScriptedTeacher(noise)), frames[:1])
    assert [weight for _, weight in calls] == [expected] * MAX_UPDATES


# -- state ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("replay", [[], ["distill.replay_buffer_size=3", "distill.replay_samples=2"]])
def test_state_round_trip_continues_the_stream_exactly(frames, replay):
    cfg = config(*SMALL, *replay)
    teacher = build_teacher("oracle", cfg.teacher, DEFAULT_CLASSES)
    first = OnlineDistiller(cfg, teacher)
    run(first, frames[:20])
    second = OnlineDistiller(cfg, teacher)
    second.load_state_dict(serialised(first.state_dict()))
    assert second.ladder == first.ladder
    assert second.ledger == first.ledger
    a, b = run(first, frames[20:40]), run(second, frames[20:40])
    assert any(r.keyframe for r in a)
    for x, y in zip(a, b, strict=True):
        assert (x.keyframe, x.updates, x.stride) == (y.keyframe, y.updates, y.stride)
        np.testing.assert_array_equal(x.prediction, y.prediction)
    assert second.ladder == first.ladder
    assert (second.ledger.frames, second.ledger.keyframes, second.ledger.updates) == (
        first.ledger.frames, first.ledger.keyframes, first.ledger.updates)


def test_weights_only_load_keeps_a_fresh_ladder_and_ledger(frames):
    cfg = config(*SMALL)
    teacher = build_teacher("oracle", cfg.teacher, DEFAULT_CLASSES)
    first = OnlineDistiller(cfg, teacher)
    run(first, frames[:20])
    second = OnlineDistiller(cfg, teacher)
    second.load_state_dict(serialised(first.state_dict()), weights_only=True)
    assert second.ladder.rung == 0 and second.ladder.is_keyframe(0)
    assert second.ledger.frames == 0
    for name, value in weights_of(second).items():
        torch.testing.assert_close(value, first.student.state_dict()[name], rtol=0, atol=0, msg=name)
