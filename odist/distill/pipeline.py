"""One stream's pipeline: source -> distiller -> writer, with restore, manifests and summary.

``StreamPipeline`` is what ``odist distill``, fleet workers and live cameras all run; a feed decides how
frames arrive (``feeds.ArchiveFeed``: every frame in order; ``odist.live.realtime``: the newest frame, in
real time). ``distill_stream`` runs an archive stream into a run root: it restores the stream's last
commit (``resume``) or starts it over (``overwrite``) and commits segment by segment. A user-facing error
while frames are processed is recorded in the stream's ``failed.json`` and raised again; nothing committed
is ever lost, so a later call with ``resume=True`` continues after the last commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from odist.config import OdistConfig, choice_overrides, with_overrides
from odist.distill.distiller import OnlineDistiller
from odist.distill.feeds import ArchiveFeed, FrameFeed
from odist.distill.identity import check_length, check_resume, identity_fields
from odist.distill.options import StreamOptions, run_document, run_manifest, stream_manifest
from odist.distill.runner import Progress, StreamRunner
from odist.errors import ConfigError, LeaseError, OdistError, OutputError
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
from odist.storage.layout import StreamArea
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.segments import SegmentWriter
from odist.teacher_default import teacher_for_input

TeacherSource = Teacher | Callable[[], Teacher]
__all__ = ["StreamLike", "StreamOptions", "StreamPipeline", "TeacherSource", "config_for_stream", "distill_stream",
           "prepare_torch", "run_manifest", "stream_manifest"]


class StreamLike(Protocol):
    """What ``distill_stream`` needs to know of a stream (``StreamSpec`` is one)."""

    @property
    def uri(self) -> str: ...

    @property
    def stream_id(self) -> str: ...


class StreamPipeline:
    """A stream's distiller, runner and segment writer over its ``area``; the writer's state provider.

    ``evaluate`` scores every frame against ``teacher``; ``overlap`` (default ``distill.overlap_labels``)
    awaits keyframe labels in the background; ``allow_gaps`` lets frame indices skip (a live camera).
    """

    def __init__(self, area: StreamArea, config: OdistConfig, teacher: Teacher, *, evaluate: bool = False,
                 overlap: bool | None = None, segment_frames: int = SEGMENT_FRAMES, allow_gaps: bool = False,
                 commit_every_s: float | None = None, name: str | None = None) -> None:
        self.area, self.config = area, config
        self.distiller = OnlineDistiller(config, teacher)
        self.writer = SegmentWriter(area, self, segment_frames=segment_frames, allow_gaps=allow_gaps,
                                    commit_every_s=commit_every_s)
        self.runner = StreamRunner(self.distiller, self.writer, evaluator=teacher if evaluate else None,
                                   overlap=config.distill.overlap_labels if overlap is None else overlap,
                                   name=name or f"stream {area.stream_id}")
        self.began_from: dict[str, Any] | None = None  # the warm start ``restore`` loaded, if any

    def restore(self, *, resume: bool, init: str | None = None, init_from: str = "--init") -> int:
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
            self.began_from = {"uri": init, "chosen_by": init_from,
                               "weight_digest": weight_digest(self.distiller.student.state_dict())}
            pretrained = payload.get("pretrain")
            if isinstance(pretrained, dict):
                self.began_from["pretrain"] = {key: pretrained.get(key) for key in ("frames", "teacher", "epochs_done")}
        return 0

    def checkpoint(self, next_frame: int) -> bytes:
        """The serialised state committed with a segment: distiller and runner, and the next frame index."""
        state = {"distiller": self.distiller.state_dict(), "runner": self.runner.state_dict()}
        return checkpoint_bytes(state, self.config.to_dict(), next_frame_index=next_frame)

    def run(self, feed: FrameFeed, start: int) -> None:
        """Process the frames ``feed`` gives from ``start`` on (background labelling closed at the end)."""
        self.runner.open()
        try:
            feed.feed(self, start)
        finally:
            self.runner.close()

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


def distill_stream(
    spec: StreamLike,
    store_uri: str | ObjectStore,
    config: OdistConfig,
    teacher: TeacherSource,
    options: StreamOptions | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress_bar: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    lease_wait_s: float = 0.0,
    source: Any = None,
) -> dict[str, Any]:
    """Distill ``spec`` into ``store_uri``; returns the stream's summary.

    ``teacher`` is a teacher or a callable building one (called only when there are frames to process).
    ``resume`` continues after the last commit (a finished stream is returned as it is); ``overwrite``
    deletes the stream's results first; without either, a stream that has results is an ``OutputError``.
    ``on_progress`` is called after every frame (besides the tqdm bar when ``progress_bar``).
    The stream is written only while this call holds its lease (``config.storage``): another writer's is a
    ``LeaseError``, once ``lease_wait_s`` has passed without it being dropped or expiring. ``source`` is the
    stream's frame source when the caller opened it already (``options.open(spec.uri)``).
    """
    options = options or StreamOptions()
    prepare_torch(config)
    source = options.open(spec.uri) if source is None else source
    area = StreamArea(open_store(store_uri), spec.stream_id)
    with area.writer_lease(config.storage.lease(lease_wait_s)):
        return _distill_leased(spec, area, source, config, teacher, options, resume=resume, overwrite=overwrite,
                               progress_bar=progress_bar, on_progress=on_progress)


def _distill_leased(spec: StreamLike, area: StreamArea, source: Any, config: OdistConfig, teacher: TeacherSource,
                    options: StreamOptions, *, resume: bool, overwrite: bool, progress_bar: bool,
                    on_progress: Callable[[Progress], None] | None) -> dict[str, Any]:
    """The body of ``distill_stream``, run while it holds the stream's lease."""
    manifest = stream_manifest(config, spec.uri, **identity_fields(spec.uri, options.seed),
                               source=_describe_source(source, spec.uri),
                               options={"seed": options.seed, "frames": options.frames, "fps": options.fps,
                                        "width": options.width, "height": options.height},
                               evaluate=options.evaluate, max_frames=options.max_frames)
    if resume and not overwrite:  # a finished stream too: its results are of this input, size and student
        check_resume(area, manifest)
    if _already_done(area, resume=resume, overwrite=overwrite):
        return area.summary()
    if resume:
        check_length(area, options.frames if options.frames is not None or not hasattr(source, "__len__")
                     else len(source))
    pipeline = StreamPipeline(area, config, teacher if isinstance(teacher, Teacher) else teacher(),
                              evaluate=options.evaluate, segment_frames=options.segment_frames,
                              commit_every_s=config.storage.commit_every_s)
    start = pipeline.restore(resume=resume, init=options.init, init_from=options.init_from)
    manifest["init"] = pipeline.began_from  # what the student began from (None: the config's fresh weights)
    start_run(area.store, run_document(spec.uri, config))
    area.record_attempt(manifest)
    try:
        pipeline.run(ArchiveFeed(source, options.max_frames, progress_bar=progress_bar, on_progress=on_progress),
                     start)
        read_stats = getattr(source, "read_stats", None)
        fetched = read_stats() if callable(read_stats) else None
        summary = pipeline.summary(spec.uri, **({"input_read": fetched} if fetched else {}))
        pipeline.finish(summary)
    except LeaseError:
        raise  # another writer has the stream now: this one writes nothing more to it
    except OdistError as exc:
        try:
            area.fail(str(exc))
        except OdistError as also:  # the store is gone too (an outage): the first error is still the news
            raise type(exc)(f"{exc.what}; its {FAILED} could not be written either: {also.what}",
                            exc.fix) from None
        raise
    return summary


def config_for_stream(base: OdistConfig, overrides: tuple[str, ...] = (), teacher: str | None = None,
                      uri: str | None = None) -> OdistConfig:
    """``base`` with a stream's ``section.key=value`` overrides and teacher spec applied (validated); with the
    stream's input ``uri``, the default teacher (``auto``) made concrete for it."""
    config = with_overrides(base, [*overrides, *choice_overrides(teacher)])
    return config if uri is None else teacher_for_input(config, uri)


def prepare_torch(config: OdistConfig) -> None:
    """Check the configured device and apply ``threads`` before a stream starts (and before its lease is taken).

    It also builds a throwaway optimiser: torch's first one imports ``torch._dynamo``, seconds on a busy
    machine that mostly hold the GIL; done while the stream's lease is held, that would keep the lease's
    heartbeat thread from renewing it for longer than a short ``storage.lease_ttl_s`` trusts it.
    """
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {config.device} requested but this torch sees no CUDA GPU", "set device=cpu")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.optim.SGD([torch.zeros(1, requires_grad=True)])


def _already_done(area: StreamArea, *, resume: bool, overwrite: bool) -> bool:
    """Apply overwrite / resume to what the stream already has; True when nothing is left to do."""
    if overwrite:  # before anything is read: a corrupt document must not stop its own replacement
        area.reset()
        return False
    if not resume:
        if area.has_results():
            raise OutputError(f"stream {area.stream_id} in {area.store.uri} already has results",
                              "pass resume=True to continue it, overwrite=True to start over, or another out")
        area.clear_failure()  # a start that failed before its first commit blocks nothing
        return False
    if area.summary() is None:  # not done (a corrupt summary is a StorageError); a failure is replaced on resume
        return False
    area.clear_failure()  # left by an attempt that failed after writing its summary
    return True


def _describe_source(source: Any, uri: str) -> dict[str, Any]:
    """What ``stream.json`` records of the decoded source; ``file``: a video file's size and version."""
    identity = getattr(source, "identity", None)
    return {"name": getattr(source, "name", uri), "width": getattr(source, "width", None),
            "height": getattr(source, "height", None), "fps": getattr(source, "fps", None),
            "file": identity() if callable(identity) else None}
