"""``odist.distill(input, out, config)``: distill one stream into a run root, the library form of ``odist distill``.

What to run is the config tree, as for every command (``distill.evaluate``, ``distill.max_frames``,
``distill.init``, the ``source`` section, ``storage.segment_frames``, ``teacher.name``, ``device``); the call
adds only what belongs to this one call: the stream's id, resume or overwrite, and progress.
Errors name config keys and keyword arguments (the CLI shows them as flags).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from odist import api_types
from odist.config import OdistConfig
from odist.distill.arguments import refuse_moved, resolve_config
from odist.distill.pipeline import StreamOptions, distill_stream
from odist.distill.runner import Progress
from odist.errors import ConfigError
from odist.models.teachers import Teacher, build_teacher
from odist.models.teachers.choice import prepare_weights
from odist.storage.location import default_stream_id
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.run_root import check_run_root
from odist.teacher_default import teacher_for_input
from odist.video.manifest import StreamSpec


def distill(input: str, out: str | ObjectStore, config: OdistConfig | str | os.PathLike[str] | None = None, *,
            overrides: Sequence[str] = (), stream_id: str | None = None, resume: bool = False,
            overwrite: bool = False, progress: bool = False, on_progress: Callable[[Progress], None] | None = None,
            **moved: Any) -> dict[str, Any]:
    """Distill ``input`` (a video file or ``synthetic:SCENARIO``) into the run root ``out`` (a location or an
    ``ObjectStore``); its summary.

    ``config`` is an ``OdistConfig``, a config file or None (defaults and environment); ``overrides``
    (``section.key=value``) are applied on top, as ``--set`` is. ``resume`` continues the stream after its last
    commit, ``overwrite`` replaces its results; ``progress`` draws a bar, ``on_progress`` is called per frame.
    """
    refuse_moved("odist.distill", moved)
    input = api_types.location("input", input, "a video path or URI, or synthetic:SCENARIO")
    if not isinstance(out, ObjectStore):
        out = api_types.location("out", out, "a run root: a folder, file:// or s3:// URI, or an ObjectStore")
    api_types.text("stream_id", stream_id)
    api_types.flag("resume", resume)
    api_types.flag("overwrite", overwrite)
    api_types.flag("progress", progress)
    resolved = teacher_for_input(resolve_config(config, overrides), input)
    if overwrite and resume:
        raise ConfigError("overwrite and resume contradict each other", "pass one of them",
                          keys=("overwrite", "resume"))
    options = StreamOptions.of(resolved)

    def build() -> Teacher:
        t = resolved.teacher
        return build_teacher(t.name, t, resolved.classes, resolved.device, resolved.performance)

    spec = StreamSpec(input, stream_id or default_stream_id(input))
    source = options.open(input)  # a missing or unreadable input is named first
    prepare_weights(resolved)  # before the run root is touched: offline without them, one line and nothing written
    check_run_root(open_store(out))
    return distill_stream(spec, out, resolved, build, options, resume=resume, overwrite=overwrite,
                          progress_bar=progress, on_progress=on_progress, source=source)
