"""What a pretrain learns from: labelled frames gathered from manifests, folders and earlier runs.

A source is

- a run root (``run.json`` at its top) or one of its stream folders (``RUN/streams/stream_id=ID``): the
  teacher labels its keyframes kept, on the frames they label, decoded as the run decoded them (its
  ``stream.json``); that teacher work is reused, not paid again;
- anything ``odist run`` takes (a manifest, folder, glob or ``synthetic:SCENARIO``): every ``every``-th
  frame, labelled by the row's replay labels, else by the configured teacher (which is paid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from odist.config import OdistConfig
from odist.distill.pipeline import StreamOptions
from odist.errors import InputError, StorageError
from odist.models.teachers import Teacher, build_teacher
from odist.models.teachers.base import Labels
from odist.models.teachers.choice import prepare_weights
from odist.models.teachers.replay import RunLabels, component_boxes, run_stream_location
from odist.storage.documents import STREAM_MANIFEST, is_run
from odist.storage.layout import StreamArea, stream_ids
from odist.storage.location import SYNTHETIC
from odist.storage.objectstore import ObjectStore, open_store
from odist.teacher_default import teacher_for_input
from odist.video.frame import Frame
from odist.video.manifest import MANIFEST_FORMATS, load_streams


@dataclass
class LabelledFrame:
    """One training example: an (H, W, 3) uint8 image and the teacher's labels of it."""

    image: np.ndarray
    labels: Labels


@dataclass
class SourceSeen:
    """What one stream gave the pretrain: its frames and the teacher work behind their labels."""

    source: str
    stream_id: str
    labels_from: str  # "run" (reused keyframe labels), "replay" (a manifest's labels) or the teacher's name
    frames: int = 0
    teacher_frames: int = 0  # labelled for this pretrain (paid)
    teacher_seconds: float = 0.0
    teacher_gflops: float = 0.0
    reused_teacher_frames: int = 0  # labelled by an earlier run (paid then, not again)
    reused_teacher_seconds: float = 0.0


@dataclass
class GatherOptions:
    """How frames are read and sampled: ``every``-th frame, at most ``max_frames`` per stream."""

    every: int = 10
    max_frames: int | None = None
    stream: StreamOptions = field(default_factory=StreamOptions)


def gather(sources: Iterable[str], config: OdistConfig, options: GatherOptions,
           on_stream: Callable[[SourceSeen], None] | None = None) -> tuple[list[LabelledFrame], list[SourceSeen]]:
    """Every labelled frame of ``sources``, in order, and what each stream gave."""
    examples: list[LabelledFrame] = []
    seen: list[SourceSeen] = []
    for source in sources:
        for stream_examples, record in _streams_of(str(source), config, options):
            examples += stream_examples
            seen.append(record)
            if on_stream is not None:
                on_stream(record)
    if not examples:
        raise InputError(f"the pretrain sources {', '.join(map(str, sources))} hold no labelled frames",
                         "pass a manifest with labels, a run that took keyframes, or a synthetic scenario")
    return examples, seen


def _streams_of(source: str, config: OdistConfig,
                options: GatherOptions) -> Iterator[tuple[list[LabelledFrame], SourceSeen]]:
    stream = run_stream_location(source)
    if stream is not None:
        yield _from_run_stream(StreamArea(open_store(stream[0]), stream[1]), config, options)
        return
    run = _run_root(source)
    if run is not None:
        for stream_id in stream_ids(run):
            yield _from_run_stream(StreamArea(run, stream_id), config, options)
        return
    teachers: dict[str, Teacher] = {}  # by name: built once for the sources that need it
    for spec in load_streams(source):
        if spec.labels:
            labeller = build_teacher(spec.teacher, config.teacher, config.classes)
        else:
            chosen = teacher_for_input(config, spec.uri)
            t = chosen.teacher
            if t.name not in teachers:
                prepare_weights(chosen)
                teachers[t.name] = build_teacher(t.name, t, chosen.classes, chosen.device, chosen.performance)
            labeller = teachers[t.name]
        yield _from_teacher(spec.uri, spec.stream_id, labeller, "replay" if spec.labels else labeller.name, options)


def _run_root(source: str) -> ObjectStore | None:
    """The store of ``source`` when it is a run root (``run.json`` at its top), else None."""
    if source.startswith(SYNTHETIC) or PurePosixPath(source).suffix.lower() in MANIFEST_FORMATS:
        return None
    try:
        store = open_store(source)
        return store if is_run(store) else None
    except StorageError:
        return None


def _from_teacher(uri: str, stream_id: str, teacher: Teacher, labels_from: str,
                  options: GatherOptions) -> tuple[list[LabelledFrame], SourceSeen]:
    """Every ``every``-th frame of ``uri``, labelled by ``teacher`` (its cost is this pretrain's)."""
    seen = SourceSeen(uri, stream_id, labels_from)
    examples = []
    wanted = range(0, options.max_frames or 2**62, max(1, options.every))
    for frame in _frames(options.stream.open(uri), wanted):
        answer = teacher.label([frame])
        examples.append(LabelledFrame(frame.image, answer.labels[0]))
        seen.teacher_frames += 1
        seen.teacher_seconds += answer.seconds
        seen.teacher_gflops += answer.gflops
    seen.frames = len(examples)
    return examples, seen


def _from_run_stream(area: StreamArea, config: OdistConfig,
                     options: GatherOptions) -> tuple[list[LabelledFrame], SourceSeen]:
    """The frames an earlier run's stream learned from, with the teacher labels it kept."""
    manifest = area.manifest()
    if manifest is None:
        raise InputError(f"run stream {area.store.url(area.prefix)} has no {STREAM_MANIFEST}",
                         "pretrain reads the stream's input from it; the run is incomplete")
    opts = manifest.get("options") or {}
    source = StreamOptions(width=opts.get("width"), height=opts.get("height"), fps=opts.get("fps"),
                           frames=opts.get("frames"), seed=opts.get("seed") or 0).open(manifest["input"])
    run_classes = (manifest.get("config") or {}).get("classes")
    if run_classes is not None and list(run_classes) != list(config.classes):
        raise InputError(f"run stream {area.store.url(area.prefix)} has classes {run_classes}, the pretrain "
                         f"{list(config.classes)}", "pretrain with the run's classes (--set classes=...)")
    labels = RunLabels(area)
    indices = labels.frame_indices()
    if options.max_frames is not None:
        indices = [i for i in indices if i < options.max_frames]
    seen = SourceSeen(manifest["input"], area.stream_id, "run")
    examples = []
    for frame in _frames(source, indices):
        classes = labels.read(frame.index)
        examples.append(LabelledFrame(frame.image, Labels(classes, component_boxes(classes, len(config.classes)))))
    seen.frames = seen.reused_teacher_frames = len(examples)
    seen.reused_teacher_seconds = _teacher_seconds_per_frame(area) * len(examples)
    return examples, seen


def _teacher_seconds_per_frame(area: StreamArea) -> float:
    """What one keyframe's labels cost the run that made them (its ledger), 0 when it has no summary yet."""
    ledger = (area.summary() or {}).get("ledger") or {}
    frames = ledger.get("teacher_frames") or 0
    return float(ledger.get("teacher_seconds", 0.0)) / frames if frames else 0.0


def _frames(source: Any, indices: Iterable[int]) -> Iterator[Frame]:
    """The frames of ``source`` at ``indices`` (ascending), reading the source once."""
    wanted = iter(indices)
    next_index = next(wanted, None)
    for frame in source:
        while next_index is not None and next_index < frame.index:  # a frame the source skipped
            next_index = next(wanted, None)
        if next_index is None:
            return
        if frame.index == next_index:
            yield frame
            next_index = next(wanted, None)


def seen_dicts(seen: list[SourceSeen]) -> list[dict[str, Any]]:
    return [asdict(s) for s in seen]
