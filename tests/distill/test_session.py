"""One stream lifecycle, for archive frames and live frames alike: new, resume, overwrite, commit cadence, finish
and fail, on a ``StreamSession`` in a local run root (no Ray, no source: frames are made here)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from odist.config import load_config
from odist.distill.options import stream_manifest
from odist.distill.session import FIRST_COMMIT_S, StreamSession
from odist.errors import InputError, OutputError
from odist.storage.checkpoint import parse_checkpoint, weight_digest
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table
from odist.video.frame import Frame

CONFIG = load_config(overrides=["student.width=0.25", "threads=1", "distill.max_updates=1", "distill.early_keyframes=0",
                                "distill.boost_updates=0"], environ={})
FRAMES = 10
SEGMENT = 4  # an archive commits every SEGMENT frames
TICK_S, COMMIT_S = 0.5, 2.0  # a live frame arrives every TICK_S seconds; it commits every COMMIT_S
MODES = ["archive", "live"]


class Clock:
    """The live session's clock, moved on by the frames as they arrive."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def frame(index: int) -> Frame:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 100, (48, 64, 3), dtype=np.uint8)
    image[8:24, 8 + index % 16:32 + index % 16] = 230  # a bright box the teacher labels
    return Frame(index, image, timestamp=float(index))


def frames(indices: range, clock: Clock, *, fail_at: int | None = None) -> Iterator[Frame]:
    for index in indices:
        if index == fail_at:
            raise InputError(f"frame {index} cannot be decoded", "check the input")
        clock.now += TICK_S
        yield frame(index)


def session(area: StreamArea, mode: str, clock: Clock) -> StreamSession:
    if mode == "live":
        return StreamSession(area, CONFIG, live=True, commit_every_s=COMMIT_S, clock=clock)
    return StreamSession(area, CONFIG, segment_frames=SEGMENT)


def manifest(mode: str) -> dict:
    return stream_manifest(CONFIG, "test:frames", live=mode == "live")


def area_of(tmp_path) -> StreamArea:
    return StreamArea(open_store(str(tmp_path / "run")), "cam")


def run(area: StreamArea, mode: str, indices: range, teacher, *, resume: bool = False, overwrite: bool = False,
        finish: bool = True) -> StreamSession:
    clock = Clock()
    stream = session(area, mode, clock)
    start = stream.prepare(teacher, manifest(mode), resume=resume, overwrite=overwrite)
    assert start == indices.start
    stream.run(frames(indices, clock))
    if finish:
        stream.finish(stream.summary("test:frames"))
    else:
        stream.commit()
    return stream


@pytest.fixture
def teacher(bright_teacher_factory):
    return bright_teacher_factory(CONFIG)


@pytest.mark.parametrize("mode", MODES)
def test_a_new_stream_runs_its_frames_and_finishes(mode, tmp_path, teacher, one_torch_thread):
    area = area_of(tmp_path)
    run(area, mode, range(FRAMES), teacher)
    assert read_stream_table(area).column("frame_index").to_pylist() == list(range(FRAMES))
    summary = area.summary()
    assert summary["frames"] == FRAMES and summary["keyframes"] >= 1 and area.status()[0] == "done"
    assert area.last_commit().next_frame_index == FRAMES and area.failure() is None
    with pytest.raises(OutputError, match="already has results"):  # new again: refused, results kept
        session(area, mode, Clock()).prepare(teacher, manifest(mode))
    assert area.summary() == summary


@pytest.mark.parametrize("mode", MODES)
def test_commits_follow_the_cadence(mode, tmp_path, teacher, one_torch_thread):
    area = area_of(tmp_path)
    run(area, mode, range(FRAMES), teacher)
    if mode == "archive":  # every SEGMENT frames, and the rest at the finish
        expected = [*range(SEGMENT, FRAMES, SEGMENT), FRAMES]
    else:  # FIRST_COMMIT_S after the start, then every COMMIT_S, and the rest at the finish
        due = [FIRST_COMMIT_S, *np.arange(FIRST_COMMIT_S + COMMIT_S, FRAMES * TICK_S + 1e-9, COMMIT_S)]
        expected = sorted({round(t / TICK_S) for t in due} | {FRAMES})
    assert [c.next_frame_index for c in area.commits()] == expected


@pytest.mark.parametrize("mode", MODES)
def test_a_resumed_stream_continues_from_its_last_commit_as_if_never_stopped(mode, tmp_path, teacher,
                                                                            one_torch_thread):
    whole = area_of(tmp_path / "whole")
    uninterrupted = run(whole, mode, range(FRAMES), teacher)
    area = area_of(tmp_path / "stopped")
    half = FRAMES // 2
    stopped = run(area, mode, range(half), teacher, finish=False)
    last = area.last_commit()
    assert last.next_frame_index == half and area.summary() is None
    committed = parse_checkpoint(area.store.get(last.checkpoint), last.checkpoint, CONFIG.to_dict())

    clock = Clock()
    resumed = session(area, mode, clock)
    assert resumed.prepare(teacher, manifest(mode), resume=True) == half
    assert resumed.weights_digest() == weight_digest(committed["state"]["distiller"]["student"])
    assert resumed.distiller.ledger.frames == stopped.distiller.ledger.frames == half
    resumed.run(frames(range(half, FRAMES), clock))
    resumed.finish(resumed.summary("test:frames"))
    table = read_stream_table(area).to_pydict()
    assert table["frame_index"] == list(range(FRAMES)) and area.summary()["frames"] == FRAMES
    if mode == "archive":  # labels come in order: the same frames give the same records and student
        same = ("frame_index", "keyframe", "updates", "stride", "trigger", "class_pixels", "teacher_class_pixels")
        assert {k: table[k] for k in same} == {k: read_stream_table(whole).to_pydict()[k] for k in same}
        assert resumed.weights_digest() == uninterrupted.weights_digest()
    if mode == "archive":  # a finished archive stream resumed is done: nothing is built or run
        assert session(area, mode, Clock()).prepare(teacher, manifest(mode), resume=True) is None
    else:  # a finished live stream resumed is live again
        assert session(area, mode, Clock()).prepare(teacher, manifest(mode), resume=True) == FRAMES
        assert area.summary() is None


@pytest.mark.parametrize("mode", MODES)
def test_overwrite_starts_the_stream_over(mode, tmp_path, teacher, one_torch_thread):
    area = area_of(tmp_path)
    run(area, mode, range(FRAMES), teacher)
    run(area, mode, range(3), teacher, overwrite=True)
    assert read_stream_table(area).column("frame_index").to_pylist() == [0, 1, 2]
    assert area.summary()["frames"] == 3 and area.commits()[-1].next_frame_index == 3


@pytest.mark.parametrize("mode", MODES)
def test_a_failure_leaves_failed_json_and_the_commits_then_a_resume_clears_it(mode, tmp_path, teacher,
                                                                               one_torch_thread):
    area = area_of(tmp_path)
    clock = Clock()
    stream = session(area, mode, clock)
    stream.prepare(teacher, manifest(mode))
    fail_at = FRAMES - 1
    with pytest.raises(InputError, match="cannot be decoded"):
        try:
            stream.run(frames(range(FRAMES), clock, fail_at=fail_at))
        except InputError as exc:
            stream.fail(exc)
    commits = area.commits()
    assert commits and commits[-1].next_frame_index < fail_at  # only what was committed before the failure
    assert area.failure()["error"].startswith(f"frame {fail_at} cannot be decoded") and area.summary() is None
    assert area.status()[0] == "failed"

    done = commits[-1].next_frame_index
    resumed = run(area, mode, range(done, FRAMES), teacher, resume=True)
    assert area.failure() is None and area.commits()[:len(commits)] == commits
    assert read_stream_table(area).column("frame_index").to_pylist() == list(range(FRAMES))
    assert resumed.distiller.ledger.frames == FRAMES
