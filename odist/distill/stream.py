"""Distill one stream into a run root: the per-stream work shared by ``odist distill`` and the fleet.

``distill_stream`` opens the source, restores the stream's last commit (``resume``) or starts it over
(``overwrite``), runs the online distiller and commits segment by segment. A user-facing error while
frames are processed is recorded in the stream's ``failed.json`` and raised again; nothing committed is
ever lost, so a later call with ``resume=True`` continues after the last commit.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from odist import __version__
from odist.config import OdistConfig, with_overrides
from odist.distill.distiller import OnlineDistiller
from odist.distill.identity import check_resume, identity_fields, record_attempt
from odist.distill.runner import Progress, StreamRunner
from odist.errors import ConfigError, OdistError, OutputError
from odist.models.teachers import Teacher
from odist.storage.checkpoint import checkpoint_bytes, load_checkpoint, parse_checkpoint
from odist.storage.integrity import require_complete
from odist.storage.layout import StreamArea, dumps
from odist.storage.objectstore import open_store
from odist.storage.segments import SegmentWriter
from odist.video.frame import Frame
from odist.video.open import open_source

TeacherSource = Teacher | Callable[[], Teacher]


class StreamLike(Protocol):
    """What ``distill_stream`` needs to know of a stream (``StreamSpec`` is one)."""

    @property
    def uri(self) -> str: ...

    @property
    def stream_id(self) -> str: ...


@dataclass(frozen=True)
class StreamOptions:
    """How to read and distill a stream, apart from the config: evaluation, length, source and commits."""

    evaluate: bool = False
    max_frames: int | None = None
    init: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: int | None = None
    seed: int = 0
    segment_frames: int = 256

    def open(self, uri: str) -> Any:
        """The frame source of ``uri`` with these options."""
        return open_source(uri, seed=self.seed, width=self.width, height=self.height, frames=self.frames,
                           fps=self.fps)


def distill_stream(
    spec: StreamLike,
    store_uri: str,
    config: OdistConfig,
    teacher: TeacherSource,
    options: StreamOptions | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress_bar: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Distill ``spec`` into ``store_uri``; returns the stream's summary.

    ``teacher`` is a teacher or a callable building one (called only when there are frames to process).
    ``resume`` continues after the last commit (a finished stream is returned as it is); ``overwrite``
    deletes the stream's results first; without either, a stream that has results is an ``OutputError``.
    ``on_progress`` is called after every frame (besides the tqdm bar when ``progress_bar``).
    """
    options = options or StreamOptions()
    _check_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    source = options.open(spec.uri)
    area = StreamArea(open_store(store_uri), spec.stream_id)
    if _already_done(area, resume=resume, overwrite=overwrite):
        return area.summary()
    manifest = stream_manifest(spec.uri, source, config, options)
    if resume:
        check_resume(area, manifest)  # the committed frames are of this input, size, sampling and student
    teacher = teacher if isinstance(teacher, Teacher) else teacher()
    distiller = OnlineDistiller(config, teacher)
    runner = StreamRunner(distiller, evaluator=teacher if options.evaluate else None,
                          overlap=config.distill.overlap_labels)
    start = restore_stream(area, distiller, runner, config, resume=resume, init=options.init)
    if not area.store.exists("run.json"):
        area.store.put("run.json", dumps(run_manifest()))
    record_attempt(area, manifest)
    writer = SegmentWriter(area, lambda next_frame: checkpoint_state(distiller, runner, config, next_frame),
                           segment_frames=options.segment_frames)
    runner.sink = writer
    total = _total_frames(source, options.max_frames)
    try:
        with _progress_bar(total, progress_bar, area.stream_id, on_progress) as show:
            runner.run(_frames(source, start, options.max_frames), total, show)
        summary = runner.summary(config.classes)
        summary.update(stream_id=area.stream_id, input=spec.uri, teacher=config.teacher.name,
                       mask_compression=writer.raw_mask_bytes / max(writer.mask_bytes, 1))
        writer.flush()
        summary["checkpoint"] = area.store.url(area.last_commit().checkpoint)
        writer.finish(summary)
    except OdistError as exc:
        try:
            area.fail(str(exc))
        except OdistError as also:  # the store is gone too (an outage): the first error is still the news
            raise type(exc)(f"{exc.what}; its failed.json could not be written either: {also.what}",
                            exc.fix) from None
        raise
    return summary


def config_for_stream(base: OdistConfig, overrides: tuple[str, ...] = (), teacher: str | None = None) -> OdistConfig:
    """``base`` with a stream's ``section.key=value`` overrides and teacher spec applied (validated)."""
    return with_overrides(base, [*overrides, *([] if teacher is None else [f"teacher.name={teacher}"])])


def run_manifest() -> dict[str, Any]:
    """Versions and time, written into ``run.json`` and every ``stream.json``."""
    return {"odist_version": __version__, "torch_version": torch.__version__,
            "python": platform.python_version(), "created_unix": time.time()}


def _already_done(area: StreamArea, *, resume: bool, overwrite: bool) -> bool:
    """Apply overwrite / resume to what the stream already has; True when nothing is left to do."""
    has_results = area.last_commit() is not None or area.summary() is not None or area.failure() is not None
    if overwrite:
        area.reset()
        return False
    if has_results and not resume:
        raise OutputError(f"stream {area.stream_id} in {area.store.uri} already has results",
                          "pass --resume to continue it, --overwrite to start over, or another --out")
    return resume and area.summary() is not None


def restore_stream(area: StreamArea, distiller: OnlineDistiller, runner: StreamRunner, config: OdistConfig, *,
             resume: bool, init: str | None) -> int:
    """Load the warm start or the last committed state; returns the first frame index to process."""
    config_dict = config.to_dict()
    last = area.last_commit() if resume else None
    if last is not None:
        require_complete(area, checkpoint=True)  # never continue a stream whose committed frames are gone
    area.sweep_uncommitted()
    if last is not None:
        payload = parse_checkpoint(area.store.get(last.checkpoint), area.store.url(last.checkpoint), config_dict)
        distiller.load_state_dict(payload["state"]["distiller"])
        runner.load_state_dict(payload["state"]["runner"])
        area.store.delete(area.key("failed.json"))
        return last.next_frame_index
    if init:
        distiller.load_state_dict(load_checkpoint(init, config_dict)["state"]["distiller"], weights_only=True)
    return 0


def checkpoint_state(distiller: OnlineDistiller, runner: StreamRunner, config: OdistConfig, next_frame: int) -> bytes:
    """The serialised state committed with a segment: distiller and runner, and the next frame index."""
    state = {"distiller": distiller.state_dict(), "runner": runner.state_dict()}
    return checkpoint_bytes(state, config.to_dict(), next_frame_index=next_frame)


def stream_manifest(uri: str, source: Any, config: OdistConfig, options: StreamOptions) -> dict[str, Any]:
    """The stream's manifest: its input, options and full config (``stream.json``; see ``identity``)."""
    return {
        **run_manifest(),
        "input": uri,
        **identity_fields(uri, options.seed),
        "source": {"name": getattr(source, "name", uri), "width": getattr(source, "width", None),
                   "height": getattr(source, "height", None), "fps": getattr(source, "fps", None)},
        "options": {"seed": options.seed, "frames": options.frames, "fps": options.fps, "width": options.width,
                    "height": options.height},
        "evaluate": options.evaluate,
        "max_frames": options.max_frames,
        "init": options.init,
        "config": config.to_dict(),
    }


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but this torch sees no CUDA GPU", "use --device cpu")


def _total_frames(source: Any, max_frames: int | None) -> int | None:
    total = getattr(source, "num_frames", None)
    if max_frames is not None:
        return min(total, max_frames) if total else max_frames
    return total


def _frames(source: Any, start: int, max_frames: int | None) -> Iterator[Frame]:
    """Frames ``start`` .. ``max_frames - 1`` of the source (random access where the source has it)."""
    stop = max_frames if max_frames is not None else None
    if start > 0 and hasattr(source, "frame"):
        end = len(source) if stop is None else min(stop, len(source))
        yield from (source.frame(i) for i in range(start, end))
        return
    for frame in source:
        if stop is not None and frame.index >= stop:
            break
        if frame.index >= start:
            yield frame


class _progress_bar:
    """A tqdm bar with frames/s, stride and running mIoU (when ``enabled``), plus an optional callback."""

    def __init__(self, total: int | None, enabled: bool, label: str,
                 callback: Callable[[Progress], None] | None = None) -> None:
        self.total, self.enabled, self.label, self.callback = total, enabled, label, callback
        self.bar = None

    def __enter__(self) -> Callable[[Progress], None] | None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=self.label, unit="frame", dynamic_ncols=True)
        return self._show if self.bar is not None or self.callback is not None else None

    def _show(self, p: Progress) -> None:
        if self.bar is not None:
            self.bar.update(p.frames - self.bar.n)
            self.bar.set_postfix(stride=p.stride, keyframes=p.keyframes, mIoU=f"{p.miou:.3f}", refresh=False)
        if self.callback is not None:
            self.callback(p)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
