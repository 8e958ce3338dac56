"""Overlapped keyframes: the student keeps inferring while the teacher labels, then learns from late labels."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np

from odist.config import TeacherConfig, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.metrics import ConfusionMeter
from odist.distill.overlap import OverlappedKeyframes
from odist.distill.runner import StreamRunner
from odist.errors import TeacherError
from odist.models.teachers.base import TeacherResult
from odist.models.teachers.oracle import OracleTeacher
from odist.video.frame import Frame
from odist.video.synthetic import SyntheticSource

CONFIG = load_config(overrides=["student.width=0.25", "threads=1", "distill.overlap_labels=true"], environ={})
HOLD_UNTIL = 6  # the teacher answers only once the stream has handed out this many frames


class GatedOracle(OracleTeacher):
    """The oracle, answering only when ``gate`` opens: proves the student went on meanwhile."""

    def __init__(self, gate: threading.Event, fail_first: bool = False) -> None:
        super().__init__(TeacherConfig(), CONFIG.classes)
        self.gate, self.fail_first, self.calls = gate, fail_first, 0

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        self.calls += 1
        assert self.gate.wait(60), "the stream never reached the gate"
        if self.fail_first and self.calls == 1:
            raise TeacherError("teacher pool 'x' lost a replica", "retry")
        return super().label(frames)


class Rows:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def add(self, record: dict, mask: np.ndarray) -> None:
        self.records.append(record)


def gated_frames(gate: threading.Event, count: int) -> Iterator[Frame]:
    source = SyntheticSource("traffic", seed=1, width=96, height=64, frames=count)
    for frame in source:
        yield frame
        if frame.index + 1 >= HOLD_UNTIL:
            gate.set()


def run(teacher: GatedOracle, gate: threading.Event, count: int = 48) -> tuple[StreamRunner, Rows]:
    rows = Rows()
    runner = StreamRunner(OnlineDistiller(CONFIG, teacher), rows, overlap=True)
    runner.run(gated_frames(gate, count))
    return runner, rows


def test_the_student_infers_every_frame_while_the_teacher_labels_and_learns_when_labels_arrive():
    gate = threading.Event()
    runner, rows = run(GatedOracle(gate), gate)
    indices = [r["frame_index"] for r in rows.records]
    assert indices == list(range(48))  # every frame inferred and recorded once, none waited for the teacher
    keyrows = [r for r in rows.records if r["keyframe"]]
    ledger = runner.distiller.ledger
    assert keyrows and len(keyrows) == ledger.keyframes == ledger.teacher_frames and ledger.frames == 48
    assert keyrows[0]["frame_index"] >= HOLD_UNTIL  # frame 0's labels were learned only after the gate opened
    assert all(r["updates"] >= 1 and np.isfinite(r["miou"]) for r in keyrows)  # scored before learning
    assert sum(r["updates"] for r in rows.records) == ledger.updates
    assert runner.keyframe_meter.matrix.sum() == ledger.keyframes * 96 * 64


def test_a_teacher_error_is_counted_and_the_keyframe_asked_again():
    gate = threading.Event()
    teacher = GatedOracle(gate, fail_first=True)
    runner, rows = run(teacher, gate)
    assert teacher.calls >= 2 and runner.distiller.ledger.keyframes >= 1
    assert runner.teacher_errors == 1  # the failed request, counted once; the keyframe was asked again
    assert len(rows.records) == 48


def test_a_cut_with_labels_in_flight_asks_the_teacher_at_the_cut_and_names_it():
    config = load_config(overrides=["student.width=0.25", "threads=1", "distill.overlap_labels=true",
                                    "distill.cut_threshold=0.1"], environ={})
    first = SyntheticSource("edited", seed=0, width=96, height=64, frames=200)
    cut = first.cuts[0]
    rows = Rows()
    runner = StreamRunner(OnlineDistiller(config, OracleTeacher(TeacherConfig(), config.classes)), rows, overlap=True)
    runner.run(first.frame(i) for i in range(cut + 30))
    keyrows = [r for r in rows.records if r["keyframe"]]
    assert [r["trigger"] for r in keyrows].count("cut") == 1 == runner.distiller.ledger.cut_keyframes
    # the cut keyframe is learned a frame or more after the cut (labels in the background), never before it
    cut_row = next(r for r in keyrows if r["trigger"] == "cut")
    assert cut_row["frame_index"] > cut
    assert runner.distiller.ledger.inferred_keyframes == runner.distiller.ledger.keyframes


def test_a_cut_while_the_student_learns_asks_for_the_new_scene_at_once():
    config = load_config(overrides=["student.width=0.25", "threads=1", "distill.overlap_labels=true",
                                    "distill.cut_threshold=0.1", "distill.accuracy_threshold=1.0"], environ={})
    source = SyntheticSource("edited", seed=0, width=96, height=64, frames=200)
    cut = source.cuts[0]
    distiller = OnlineDistiller(config, OracleTeacher(TeacherConfig(), config.classes))
    overlapped = OverlappedKeyframes(distiller, ConfusionMeter(distiller.num_classes))
    overlapped.step(source.frame(cut - 3))  # the first frame: a keyframe
    overlapped.pending.answer.result()  # its labels are back before the next frame
    overlapped.step(source.frame(cut - 2))
    overlapped.step(source.frame(cut - 1))
    assert overlapped.learning is not None and overlapped.pending is None  # 8 updates: still learning
    overlapped.step(source.frame(cut))
    assert overlapped.learning is not None
    assert (overlapped.pending.frame.index, overlapped.pending.trigger) == (cut, "cut")
    overlapped.close()
