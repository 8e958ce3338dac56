"""The jump cut rule, the drift trigger and the student's test on a cut: camera motion is no cut, a cut is."""

import threading

import numpy as np
import pytest
from PIL import Image

from odist.config import DEFAULT_CLASSES, PAPER_KEYFRAME_POLICY, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.policy import KeyframePolicy, Trigger
from odist.distill.runner import StreamRunner
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.frame import Frame
from odist.video.synthetic import SyntheticSource

pytestmark = pytest.mark.usefixtures("one_torch_thread")

W, H = 96, 64  # the frames' size
SMALL = ["student.width=0.25", "distill.lr=0.1"]


class Person(Teacher):
    """Labels a person at the same place on every frame (once ``gate``, when given, opens)."""

    name = "person"

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__(DEFAULT_CLASSES)
        self.gate = gate

    def label(self, frames) -> TeacherResult:
        assert self.gate is None or self.gate.wait(60), "the stream never opened the gate"
        return TeacherResult([Labels(a_person(f)) for f in frames], seconds=0.3, gflops=520.0)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return 520.0


def a_person(frame: Frame) -> np.ndarray:
    labels = np.zeros((frame.height, frame.width), np.uint8)
    labels[20:44, 40:52] = 1
    return labels


def view(seed: int) -> list[Frame]:
    """One still view (blocks of colour), as frames 0..."""
    rng = np.random.default_rng(seed)
    image = np.kron(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), np.ones((H // 4, W // 6, 1), np.uint8))
    return [Frame(0, image, timestamp=0.0)]


def config(*overrides: str):
    return load_config(None, [*PAPER_KEYFRAME_POLICY, *overrides], environ={})


def policy(*overrides: str) -> KeyframePolicy:
    return KeyframePolicy.from_config(config("distill.cut_threshold=0.1", *overrides).distill)


def world(seed: int = 0) -> np.ndarray:
    """A 3x-wide, 3x-high textured view (smooth blobs of colour) to cut frames out of."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (12, 18, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((3 * W, 3 * H), Image.Resampling.BICUBIC))


def crop(image: np.ndarray, x: float, y: float, scale: float = 1.0) -> np.ndarray:
    """The W x H view at (x, y) of ``image``, ``scale`` times wider than the frame (a zoom out when > 1)."""
    w, h = round(W * scale), round(H * scale)
    x0, y0 = round(x), round(y)
    return np.array(Image.fromarray(image[y0:y0 + h, x0:x0 + w]).resize((W, H), Image.Resampling.BILINEAR))


def frames(images) -> list[Frame]:
    return [Frame(i, image, timestamp=i / 30) for i, image in enumerate(images)]


def pan(n: int = 60) -> list[np.ndarray]:
    return [crop(world(), 2.5 * i, 50 + 0.5 * i) for i in range(n)]  # 2.5 px a frame: a cell in 1.2 frames


def zoom(n: int = 60) -> list[np.ndarray]:
    scales = np.linspace(1.0, 2.0, n)  # zoom out to twice the field of view over two seconds
    return [crop(world(), 144 - W * s / 2, 96 - H * s / 2, s) for s in scales]


def shake(n: int = 60) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [crop(world(), 96 + rng.uniform(-4, 4), 64 + rng.uniform(-4, 4)) for _ in range(n)]


def exposure(n: int = 60) -> list[np.ndarray]:
    base = crop(world(), 96, 64).astype(np.float32)
    return [np.clip(base * g, 0, 255).astype(np.uint8) for g in np.linspace(1.0, 0.4, n)]


def triggers(p: KeyframePolicy, images) -> list[tuple[int, Trigger]]:
    """(frame, trigger) of the frames ``p`` asks for; every keyframe is fitted (the ladder climbs)."""
    out = []
    for frame in frames(images):
        trigger = p.before_inference(frame)
        if trigger is not None:
            out.append((frame.index, trigger))
            p.after_keyframe(frame.index, trigger, threshold_met=True, empty=False)
    return out


@pytest.mark.parametrize("motion", [pan, zoom, shake, exposure])
def test_camera_motion_and_exposure_are_no_cut(motion):
    images = motion()
    assert not [t for _, t in triggers(policy(), images) if t == Trigger.CUT]


def test_the_rule_before_called_a_pan_a_chain_of_cuts():
    """What the jump rule fixes: the distance from the last keyframe passes the threshold during a pan."""
    cuts = [t for _, t in triggers(policy("distill.cut_rule=keyframe"), pan()) if t == Trigger.CUT]
    assert len(cuts) >= 3


@pytest.mark.parametrize("motion", [pan, zoom, shake, exposure])
def test_a_hard_cut_during_camera_motion_triggers_on_its_frame(motion):
    images = motion(40)
    images[30:] = [crop(world(seed=7), 10 + i, 20) for i in range(10)]
    found = triggers(policy(), images)
    assert (30, Trigger.CUT) in found
    assert [i for i, t in found if t == Trigger.CUT] == [30]


def test_drift_asks_for_a_keyframe_without_restarting_the_ladder():
    p = policy("distill.cut_threshold=0", "distill.drift_threshold=0.1")
    found = triggers(p, pan(120))
    drifts = [i for i, t in found if t == Trigger.DRIFT]
    assert drifts and not [t for _, t in found if t == Trigger.CUT]
    assert p.ladder.rung == len(p.ladder.strides) - 1  # every keyframe fitted: the ladder climbed through


def test_a_cut_the_student_does_not_handle_probes_at_the_lowest_stride():
    p = policy("distill.cut_ladder=test")
    p.ladder.rung = 3
    assert p.after_keyframe(100, Trigger.CUT, threshold_met=True, empty=False, handled=False) == 8
    assert p.ladder.next_keyframe == 108


def test_a_cut_onto_a_view_the_student_handles_climbs():
    p = policy("distill.cut_ladder=test")
    p.ladder.rung = 2
    assert p.after_keyframe(100, Trigger.CUT, threshold_met=True, empty=False, handled=True) == 64
    reset = policy("distill.cut_ladder=reset")
    reset.ladder.rung = 2
    assert reset.after_keyframe(100, Trigger.CUT, threshold_met=True, empty=False, handled=True) == 16


def test_recover_climbs_back_to_the_rung_before_the_cut_once_the_student_handles_the_new_view():
    p = policy("distill.cut_ladder=recover")
    p.ladder.rung = 3
    assert p.after_keyframe(100, Trigger.CUT, threshold_met=True, empty=False, handled=False) == 8
    assert p.after_keyframe(108, Trigger.LADDER, threshold_met=True, empty=False, handled=False) == 16
    assert p.after_keyframe(124, Trigger.LADDER, threshold_met=True, empty=False, handled=True) == 64
    assert p.ladder.next_keyframe == 188 and p.recover_rung is None
    # once back, the ladder moves one rung at a time again
    assert p.after_keyframe(188, Trigger.LADDER, threshold_met=False, empty=False, handled=False) == 32
    test = policy("distill.cut_ladder=test")  # "test" climbs one rung at a time after the probe
    test.ladder.rung = 3
    test.after_keyframe(100, Trigger.CUT, threshold_met=True, empty=False, handled=False)
    assert test.after_keyframe(108, Trigger.LADDER, threshold_met=True, empty=False, handled=True) == 16


def test_recover_waits_through_keyframes_with_no_foreground():
    p = policy("distill.cut_ladder=recover", "distill.empty_keyframes=hold")
    p.ladder.rung = 2
    p.after_keyframe(100, Trigger.CUT, threshold_met=False, empty=False, handled=False)
    assert p.after_keyframe(108, Trigger.LADDER, threshold_met=True, empty=True, handled=True) == 8  # holds
    assert p.recover_rung == 2
    assert p.after_keyframe(116, Trigger.DRIFT, threshold_met=True, empty=False, handled=True) == 32


def test_an_empty_cut_keyframe_tests_nothing():
    p = policy("distill.cut_ladder=test")
    p.ladder.rung = 2
    assert p.after_keyframe(100, Trigger.CUT, threshold_met=True, empty=True, handled=True) == 8


def test_a_cut_back_to_a_view_the_bank_knows_climbs_the_ladder():
    cfg = config(*SMALL, "distill.cut_threshold=0.1", "distill.view_bank_size=2", "distill.max_updates=20",
                 "distill.cut_ladder=test")
    distiller = OnlineDistiller(cfg, Person())
    one, two = view(1)[0].image, view(2)[0].image
    for i in range(40):
        distiller.step(Frame(i, one, timestamp=i / 30))
    for i in range(40, 50):
        distiller.step(Frame(i, two, timestamp=i / 30))
    rung = distiller.ladder.rung
    back = distiller.step(Frame(50, one, timestamp=50 / 30))
    assert back.trigger == "cut" and distiller.ledger.view_recalls == 1
    assert back.accuracy_before_updates > cfg.distill.accuracy_threshold  # the recalled student handles it
    assert rung >= 1 and distiller.ladder.rung == min(rung + 1, 3)  # no restart from the lowest rung


def test_a_cut_seen_while_labels_are_in_flight_is_kept_for_the_next_decision():
    p = policy()
    images = [crop(world(), 96, 64)] * 5 + [crop(world(seed=7), 96, 64)] * 5
    fs = frames(images)
    for f in fs[:4]:
        p.before_inference(f)
    p.observe(fs[5])  # the cut's frame passes while the policy is not asked
    assert p.cut(fs[6]) == Trigger.CUT
    assert p.cut(fs[7]) is None


def test_drift_keyframes_are_counted():
    cfg = config(*SMALL, "distill.drift_threshold=0.1")
    distiller = OnlineDistiller(cfg, Person())
    results = [distiller.step(f) for f in frames(pan(90))]
    drift = [r for r in results if r.keyframe and r.trigger == "drift"]
    assert drift and distiller.ledger.keyframes_by_trigger()["drift"] == len(drift)


class _Records:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def add(self, record: dict, mask: np.ndarray) -> None:
        self.records.append(record)


def test_a_pan_while_labels_are_in_flight_is_no_cut():
    """Live labels: the frames that pass while the teacher labels are observed, so the jump the policy
    judges next is one frame's motion, not the whole pan since the keyframe."""
    gate = threading.Event()

    def stream():
        for i, image in enumerate(pan(48)):
            if i == 12:  # the first keyframe's labels come back only now
                gate.set()
            yield Frame(i, image, timestamp=i / 30)

    cfg = config(*SMALL, "threads=1", "distill.overlap_labels=true", "distill.cut_threshold=0.1")
    records = _Records()
    runner = StreamRunner(OnlineDistiller(cfg, Person(gate)), records, overlap=True)
    runner.run(stream())
    assert runner.distiller.ledger.keyframes >= 2
    assert "cut" not in [r["trigger"] for r in records.records if r["keyframe"]]


def test_top_rungs_wait_for_a_keyframe_the_student_handled():
    p = policy("distill.strides=[8,16,32,64,128,256]", "distill.handled_climb_from=4")
    strides = [p.after_keyframe(i, Trigger.LADDER, threshold_met=True, empty=False) for i in range(6)]
    assert strides == [16, 32, 64, 64, 64, 64]  # fitted after updates: 128 needs more
    assert p.after_keyframe(6, Trigger.LADDER, threshold_met=True, empty=False, handled=True) == 128
    assert p.after_keyframe(7, Trigger.LADDER, threshold_met=False, empty=False) == 64  # a failed test drops


def scenario_triggers(name: str, frames: int, fps: float = 30.0) -> tuple[list[tuple[int, Trigger]], tuple[int, ...]]:
    """The keyframes the shipped policy asks for on a synthetic scenario (every keyframe fitted), and its cuts."""
    source = SyntheticSource(name, seed=2, width=W, height=H, frames=frames, fps=fps)
    return triggers(KeyframePolicy.from_config(load_config(None, [], environ={}).distill),
                    [f.image for f in source]), source.cuts


@pytest.mark.parametrize("name", ["static_easy+pan", "traffic+zoom", "traffic+shake", "static_easy+exposure",
                                  "traffic+pan+zoom+shake+exposure+blur+jpeg"])
def test_a_filmed_pan_zoom_shake_or_exposure_ramp_is_no_cut(name):
    found, cuts = scenario_triggers(name, 120)
    assert cuts == () and not [i for i, t in found if t == Trigger.CUT]


def test_a_ptz_tour_pans_fast_between_presets_without_a_cut():
    found, cuts = scenario_triggers("ptz_tour", 190)  # 5 s on the first preset, a 1 s move to the second
    assert cuts == () and not [i for i, t in found if t == Trigger.CUT]


def test_hard_cuts_between_handheld_shots_trigger_on_their_frame():
    found, cuts = scenario_triggers("handheld_edited", 180)
    assert len(cuts) >= 2
    assert [i for i, t in found if t == Trigger.CUT] == list(cuts)
