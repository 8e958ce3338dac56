"""``odist.distill(...)``: distill one stream into a run root, the library form of ``odist distill``.

Keyword arguments are named like the command's long options (``max_frames`` for ``--max-frames``);
errors name those keywords (the CLI shows them as flags).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from odist import api_types
from odist.config import OdistConfig
from odist.distill.arguments import check_positive, check_stream_arguments, resolve_config
from odist.distill.pipeline import StreamOptions, distill_stream
from odist.distill.runner import Progress
from odist.errors import ConfigError
from odist.models.teachers import Teacher, build_teacher
from odist.models.teachers.choice import prepare_weights
from odist.run_config import SEGMENT_FRAMES
from odist.storage.location import default_stream_id
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.run_root import check_run_root
from odist.teacher_default import teacher_for_input
from odist.video.manifest import StreamSpec


def distill(input: str, *, out: str | ObjectStore, config: OdistConfig | str | os.PathLike[str] | None = None,
            teacher: str | None = None, device: str | None = None, overrides: Sequence[str] = (),
            evaluate: bool = False, max_frames: int | None = None, init: str | None = None,
            width: int | None = None, height: int | None = None, fps: float | None = None,
            frames: int | None = None, seed: int = 0, stream_id: str | None = None, resume: bool = False,
            overwrite: bool = False, segment_frames: int = SEGMENT_FRAMES, progress: bool = False,
            on_progress: Callable[[Progress], None] | None = None) -> dict[str, Any]:
    """Distill ``input`` (a video file or ``synthetic:SCENARIO``) into the run root ``out`` (a location or an
    ``ObjectStore``); its summary.

    ``config`` is an ``OdistConfig``, a config file or None (defaults); ``teacher``, ``device`` and
    ``overrides`` are applied on top, as ``--teacher``, ``--device`` and ``--set`` are.
    """
    input = api_types.location("input", input, "a video path or URI, or synthetic:SCENARIO")
    if not isinstance(out, ObjectStore):
        out = api_types.location("out", out, "a run root: a folder, file:// or s3:// URI, or an ObjectStore")
    check_stream_arguments(evaluate=evaluate, init=init, width=width, height=height, fps=fps, frames=frames,
                           seed=seed, progress=progress)
    api_types.text("stream_id", stream_id)
    api_types.flag("resume", resume)
    api_types.flag("overwrite", overwrite)
    resolved = teacher_for_input(resolve_config(config, overrides, teacher=teacher, device=device), input)
    check_positive(max_frames=max_frames, segment_frames=segment_frames)
    if overwrite and resume:
        raise ConfigError("overwrite and resume contradict each other", "pass one of them")
    options = StreamOptions(evaluate=evaluate, max_frames=max_frames, init=init, width=width, height=height,
                            fps=fps, frames=frames, seed=seed, segment_frames=segment_frames)

    def build() -> Teacher:
        t = resolved.teacher
        return build_teacher(t.name, t, resolved.classes, resolved.device, resolved.performance)

    spec = StreamSpec(input, stream_id or default_stream_id(input))
    source = options.open(input)  # a missing or unreadable input is named first
    prepare_weights(resolved)  # before the run root is touched: offline without them, one line and nothing written
    check_run_root(open_store(out))
    return distill_stream(spec, out, resolved, build, options, resume=resume, overwrite=overwrite,
                          progress_bar=progress, on_progress=on_progress, source=source)
