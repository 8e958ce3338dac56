"""Run an archive stream into a run root: ``distill_stream``, on a ``StreamSession`` (``odist.distill.session``).

``distill_stream`` opens the stream's source, takes its lease, restores the stream's last commit
(``resume``) or starts it over (``overwrite``) and commits segment by segment. A user-facing error while
frames are processed is recorded in the stream's ``failed.json`` and raised again; nothing committed is
ever lost, so a later call with ``resume=True`` continues after the last commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from odist.config import OdistConfig, choice_overrides, with_overrides
from odist.distill.feeds import ProgressBar, source_frames, total_frames
from odist.distill.identity import identity_fields
from odist.distill.options import StreamOptions, run_document, run_manifest, stream_manifest
from odist.distill.runner import Progress
from odist.distill.session import StreamSession, TeacherSource
from odist.errors import ConfigError, LeaseError, OdistError
from odist.models.jitnet import JITNet
from odist.storage.layout import StreamArea
from odist.storage.objectstore import ObjectStore, open_store
from odist.teacher_default import teacher_for_input

__all__ = ["StreamLike", "StreamOptions", "StreamSession", "TeacherSource", "config_for_stream", "distill_stream",
           "prepare_torch", "run_manifest", "stream_manifest"]


class StreamLike(Protocol):
    """What ``distill_stream`` needs to know of a stream (``StreamSpec`` is one)."""

    @property
    def uri(self) -> str: ...

    @property
    def stream_id(self) -> str: ...


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
    student: JITNet | None = None,
) -> dict[str, Any]:
    """Distill ``spec`` into ``store_uri``; returns the stream's summary.

    ``teacher`` is a teacher or a callable building one (called only when there are frames to process).
    ``resume`` continues after the last commit (a finished stream is returned as it is); ``overwrite``
    deletes the stream's results first; without either, a stream that has results is an ``OutputError``.
    ``on_progress`` is called after every frame (besides the tqdm bar when ``progress_bar``).
    The stream is written only while this call holds its lease (``config.storage``): another writer's is a
    ``LeaseError``, once ``lease_wait_s`` has passed without it being dropped or expiring. ``source`` is the
    stream's frame source when the caller opened it already (``options.open(spec.uri)``); ``student`` a new
    student with the config's initial weights to use (``StudentPool``) instead of building one.
    """
    options = options or StreamOptions()
    prepare_torch(config)
    source = options.open(spec.uri) if source is None else source
    area = StreamArea(open_store(store_uri), spec.stream_id)
    with area.writer_lease(config.storage.lease(lease_wait_s)):
        return _distill_leased(spec, area, source, config, teacher, options, resume=resume, overwrite=overwrite,
                               progress_bar=progress_bar, on_progress=on_progress, student=student)


def _distill_leased(spec: StreamLike, area: StreamArea, source: Any, config: OdistConfig, teacher: TeacherSource,
                    options: StreamOptions, *, resume: bool, overwrite: bool, progress_bar: bool,
                    on_progress: Callable[[Progress], None] | None, student: JITNet | None = None) -> dict[str, Any]:
    """The body of ``distill_stream``, run while it holds the stream's lease."""
    manifest = stream_manifest(config, spec.uri, **identity_fields(spec.uri, options.seed),
                               source=_describe_source(source, spec.uri),
                               options={"seed": options.seed, "frames": options.frames, "fps": options.fps,
                                        "width": options.width, "height": options.height},
                               evaluate=options.evaluate, max_frames=options.max_frames)
    session = StreamSession(area, config, evaluate=options.evaluate, segment_frames=options.segment_frames,
                            commit_every_s=config.storage.commit_every_s, student=student)
    length = None if not resume else (options.frames if options.frames is not None or not hasattr(source, "__len__")
                                      else len(source))
    start = session.prepare(teacher, manifest, resume=resume, overwrite=overwrite, init=options.init,
                            init_from=options.init_from, length=length, run=run_document(spec.uri, config))
    if start is None:
        return area.summary()
    try:
        with ProgressBar(total_frames(source, options.max_frames), progress_bar, spec.stream_id,
                         on_progress) as show:
            session.run(source_frames(source, start, options.max_frames),
                        total=total_frames(source, options.max_frames), on_progress=show)
        read_stats = getattr(source, "read_stats", None)
        fetched = read_stats() if callable(read_stats) else None
        summary = session.summary(spec.uri, **({"input_read": fetched} if fetched else {}))
        session.finish(summary)
    except LeaseError:
        raise  # another writer has the stream now: this one writes nothing more to it
    except OdistError as exc:
        session.fail(exc)
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
        raise ConfigError(f"device {config.device} requested but this torch sees no CUDA GPU", "set device=cpu",
                          keys=("device=cpu",))
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.optim.SGD([torch.zeros(1, requires_grad=True)])


def _describe_source(source: Any, uri: str) -> dict[str, Any]:
    """What ``stream.json`` records of the decoded source; ``file``: a video file's size and version."""
    identity = getattr(source, "identity", None)
    return {"name": getattr(source, "name", uri), "width": getattr(source, "width", None),
            "height": getattr(source, "height", None), "fps": getattr(source, "fps", None),
            "file": identity() if callable(identity) else None}
