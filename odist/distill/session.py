"""One stream's lifecycle, Ray-free: prepare, run over frames, commit, finish, fail.

``StreamSession`` is what ``odist distill``, fleet workers and live cameras all run. ``prepare`` starts a
stream new, resumes it after its last commit (a finished one is reported done, or, live, reopened),
overwrites it, or warm-starts it from a checkpoint (``init``). ``run`` processes any frame iterator:
an archive's every frame, committing every ``segment_frames`` frames (or once the oldest uncommitted
frame is ``commit_every_s`` old), or a live camera's newest frames (``None`` when none arrived), committing
every ``commit_every_s`` seconds. ``finish`` commits the rest and writes the summary; ``fail`` records
the error in ``failed.json``, leaving every commit intact so a later resume continues after the last one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from odist.config import OdistConfig
from odist.distill.distiller import OnlineDistiller
from odist.distill.identity import check_length, check_resume
from odist.distill.runner import Progress, StreamRunner
from odist.errors import OdistError, OutputError
from odist.models.jitnet import JITNet
from odist.models.teachers import Teacher
from odist.run_config import SEGMENT_FRAMES
from odist.storage.checkpoint import (
    check_continuable,
    checkpoint_bytes,
    load_checkpoint,
    parse_checkpoint,
    weight_digest,
    weights_checkpoint_bytes,
)
from odist.storage.documents import FAILED, start_run
from odist.storage.integrity import require_complete
from odist.storage.layout import Commit, StreamArea
from odist.storage.segments import SegmentWriter
from odist.video.frame import Frame

TeacherSource = Teacher | Callable[[], Teacher]
NEVER = 1 << 62  # a live stream's segments are committed by time, never by frame count
FIRST_COMMIT_S = 1.0  # a live stream's first processed frames commit this soon, not after a whole commit_every_s
__all__ = ["FIRST_COMMIT_S", "NEVER", "StreamSession", "TeacherSource", "done_summary",
           "try_record_failure"]


class StreamSession:
    """A stream's distiller, runner and segment writer over its ``area``, from ``prepare`` to ``finish`` or ``fail``.

    ``live`` streams take frame indices with gaps, await keyframe labels in the background, commit by time
    (``commit_every_s`` on ``clock``, calling ``on_commit`` after each) and reopen a finished stream;
    archive streams commit every ``segment_frames`` frames. ``evaluate`` scores every frame against the
    teacher; ``overlap`` (default ``distill.overlap_labels``; always on live) awaits labels in the background.
    """

    def __init__(self, area: StreamArea, config: OdistConfig, *, live: bool = False, evaluate: bool = False,
                 overlap: bool | None = None, segment_frames: int = SEGMENT_FRAMES,
                 commit_every_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 on_commit: Callable[[], None] | None = None, name: str | None = None,
                 student: JITNet | None = None) -> None:
        self.area, self.config, self.live = area, config, live
        self._student = student  # a new student with the config's initial weights (``StudentPool``), or None
        self.evaluate, self.clock, self.on_commit = evaluate, clock, on_commit
        self.overlap = True if live else config.distill.overlap_labels if overlap is None else overlap
        self.segment_frames = NEVER if live else segment_frames
        self.commit_every_s = commit_every_s
        self.name = name or (f"camera {area.stream_id}" if live else f"stream {area.stream_id}")
        self.began_from: dict[str, Any] | None = None  # the warm start ``prepare`` loaded, if any
        self.start = 0  # the first frame index this session processes
        self.frames_this_run = 0  # frames a live run processed
        self.commits = 0  # segments committed by ``commit``
        self.distiller: OnlineDistiller
        self.runner: StreamRunner
        self.writer: SegmentWriter

    def prepare(self, teacher: TeacherSource, manifest: dict[str, Any], *, resume: bool = False,
                overwrite: bool = False, init: str | None = None, init_from: str = "--init",
                length: int | None = None, resume_fix: str | None = None,
                run: dict[str, Any] | None = None) -> int | None:
        """Start the stream: new, resumed (``resume``), started over (``overwrite``) or warm-started (``init``).

        Returns the first frame index to process, or None when a resumed archive stream is done already (its
        teacher is then never built). A resume is refused when the committed frames were made by another
        ``manifest`` (``resume_fix`` says what to do) or, for an archive, when the input's ``length`` ends
        before them. ``run`` is the run root's ``run.json`` (archive streams); ``manifest`` is recorded as
        this attempt's ``stream.json``."""
        area = self.area
        if resume and not overwrite:  # a finished stream too: its results are of this input, size and student
            check_resume(area, manifest, *([resume_fix] if resume_fix else []))
        if _already_done(area, resume=resume, overwrite=overwrite, reopen=self.live):
            return None
        if resume:
            check_length(area, length)
        self._build(teacher if isinstance(teacher, Teacher) else teacher())
        self.start = self._restore(resume=resume, init=init, init_from=init_from)
        if self.live:
            area.reopen()  # a camera that was stopped (or failed) is live again
        else:
            manifest["init"] = self.began_from  # what the student began from (None: the config's fresh weights)
            if run is not None:
                start_run(area.store, run)
        area.record_attempt(manifest)
        return self.start

    def _build(self, teacher: Teacher) -> None:
        self.distiller = OnlineDistiller(self.config, teacher, self._student)
        self.writer = SegmentWriter(self.area, self, segment_frames=self.segment_frames, allow_gaps=self.live,
                                    commit_every_s=None if self.live else self.commit_every_s)
        self.runner = StreamRunner(self.distiller, self.writer, evaluator=teacher if self.evaluate else None,
                                   overlap=self.overlap, name=self.name)

    def _restore(self, *, resume: bool, init: str | None, init_from: str) -> int:
        """Load the warm start or the last committed state; returns the first frame index to process.

        A warm start is described in ``began_from``: the checkpoint, what chose it and the digest of the
        weights the student holds before its first frame (and, for a pretrained checkpoint, what the
        pretrain saw and the teacher work it paid)."""
        area, config_dict = self.area, self.config.to_dict()
        last = area.last_commit() if resume else None
        if last is not None:
            require_complete(area, checkpoint=True)  # never continue a stream whose committed frames are gone
        area.sweep_uncommitted()
        if last is not None:
            payload = parse_checkpoint(area.store.get(last.checkpoint), area.store.url(last.checkpoint), config_dict)
            check_continuable(payload, area.store.url(last.checkpoint), area.stream_id)
            self.distiller.load_state_dict(payload["state"]["distiller"])
            self.runner.load_state_dict(payload["state"]["runner"])
            area.clear_failure()
            return last.next_frame_index
        if init:
            payload = load_checkpoint(init, config_dict)
            self.distiller.load_state_dict(payload["state"]["distiller"], weights_only=True)
            self.began_from = {"uri": init, "chosen_by": init_from, "weight_digest": self.weights_digest()}
            pretrained = payload.get("pretrain")
            if isinstance(pretrained, dict):
                self.began_from["pretrain"] = {key: pretrained.get(key) for key in ("frames", "teacher", "epochs_done")}
        return 0

    def weights_digest(self) -> str:
        """The digest of the student's current weights (``weight_digest``)."""
        return weight_digest(self.distiller.student.state_dict())

    def checkpoint(self, next_frame: int) -> bytes:
        """The serialised state committed with a segment: distiller and runner, and the next frame index."""
        state = {"distiller": self.distiller.state_dict(), "runner": self.runner.state_dict()}
        return checkpoint_bytes(state, self.config.to_dict(), next_frame_index=next_frame)

    def run(self, frames: Iterable[Frame | None], *, total: int | None = None,
            on_progress: Callable[[Progress], None] | None = None,
            after_each: Callable[[Frame | None], None] | None = None) -> None:
        """Process ``frames`` (from ``start`` on), committing as the stream's cadence says.

        An archive's frames are all processed in order (``on_progress`` after each, out of ``total``); a live
        stream's are processed as they come, ``None`` standing for a wait without one, and ``after_each`` is
        called after every item. Background labelling is closed at the end."""
        self.runner.open()
        try:
            if self.live:
                self._run_live(frames, after_each)
            else:
                self.runner.run(frames, total, on_progress)
        finally:
            self.runner.close()

    def _run_live(self, frames: Iterable[Frame | None], after_each: Callable[[Frame | None], None] | None) -> None:
        last_commit = self.clock()
        for frame in frames:
            if frame is not None:
                self.runner.process(frame, timed=True)
                self.frames_this_run += 1
            if self.clock() - last_commit >= self.commit_period():
                self.commit()
                last_commit = self.clock()
            if after_each is not None:
                after_each(frame)

    def commit_period(self) -> float:
        """A live stream's ``commit_every_s``; ``FIRST_COMMIT_S`` at most while processed frames await their
        first commit."""
        period = float(self.commit_every_s or 0.0)
        return min(period, FIRST_COMMIT_S) if self.frames_this_run and not self.commits else period

    def commit(self) -> Commit | None:
        """Commit what is buffered (nothing when empty); then ``on_commit``."""
        commit = self.writer.flush()
        if commit is not None:
            self.commits += 1
        if self.on_commit is not None:
            self.on_commit()
        return commit

    def summary(self, input_uri: str, **extra: Any) -> dict[str, Any]:
        """Commit what is buffered; the stream's summary (``summary.json``), with ``extra`` fields."""
        self.writer.flush()
        summary = self.runner.summary(self.config.classes)
        summary.update(stream_id=self.area.stream_id, input=input_uri, teacher=self.config.teacher.name, **extra,
                       mask_compression=self.writer.raw_mask_bytes / max(self.writer.mask_bytes, 1),
                       storage_retries=self.area.store.retries)
        last = self.area.last_commit()
        if last is not None:
            summary["checkpoint"] = self.area.store.url(last.checkpoint)
        return summary

    def finish(self, summary: dict[str, Any]) -> None:
        """Commit the last segment, then mark the stream done with ``summary``; then shrink the last checkpoint
        to ``storage.final_checkpoint`` (until the summary exists it is whole, so a crash still resumes exactly)."""
        self.writer.finish(summary)
        contents = self.config.storage.final_checkpoint
        last = self.area.last_commit()
        if contents != "full" and last is not None:
            self.area.rewrite_checkpoint(last, weights_checkpoint_bytes(
                self.distiller.student.state_dict(), self.config.to_dict(), contents,
                next_frame_index=last.next_frame_index))

    def record_failure(self, error: str) -> None:
        """Record ``error`` in the stream's ``failed.json``; its commits stay, so a resume continues after them."""
        self.area.fail(error)

    def fail(self, error: OdistError) -> NoReturn:
        """``record_failure`` and raise ``error`` again; when the store is gone too, the first error is still the
        news, with the second added."""
        try:
            self.record_failure(str(error))
        except OdistError as also:
            raise type(error)(f"{error.what}; its {FAILED} could not be written either: {also.what}",
                              error.fix) from None
        raise error


def done_summary(area: StreamArea) -> dict[str, Any] | None:
    """The summary of a stream that is done, else None: whether a resume has anything left to do."""
    return area.summary()


def try_record_failure(area: StreamArea, error: str) -> bool:
    """Write the stream's ``failed.json`` (its commits stay); False when even that is impossible (the store is
    unreachable)."""
    try:
        area.fail(error)
    except OdistError:
        return False
    return True


def _already_done(area: StreamArea, *, resume: bool, overwrite: bool, reopen: bool) -> bool:
    """Apply overwrite / resume to what the stream already has; True when nothing is left to do (never when
    ``reopen``: a finished live stream goes on)."""
    if overwrite:  # before anything is read: a corrupt document must not stop its own replacement
        area.reset()
        return False
    if not resume:
        if area.has_results():
            raise OutputError(f"stream {area.stream_id} in {area.store.uri} already has results",
                              "pass resume=True to continue it, overwrite=True to start over, or another out",
                              keys=("resume=True", "overwrite=True", "another out"))
        area.clear_failure()  # a start that failed before its first commit blocks nothing
        return False
    if reopen or done_summary(area) is None:  # not done (a corrupt summary is a StorageError); a failure is replaced
        return False
    area.clear_failure()  # left by an attempt that failed after writing its summary
    return True
