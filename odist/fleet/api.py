"""``odist.run(...)``: a fleet job, the library form of ``odist run``.

The fleet's placement (``fleet``) and the shared teacher pool (``pool``, used when ``pool.enabled``) come
from the config tree, or from the ``fleet`` / ``pool`` arguments, which replace those sections.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from odist import api_types
from odist.config import OdistConfig
from odist.distill.arguments import check_positive, check_stream_arguments, resolve_config
from odist.distill.options import StreamOptions
from odist.fleet.driver import run_fleet
from odist.fleet.runtime import TeacherFactory
from odist.fleet.summary import FleetSummary
from odist.run_config import SEGMENT_FRAMES, FleetConfig, PoolConfig


def run(source: str, *, out: str, config: OdistConfig | str | os.PathLike[str] | None = None,
        fleet: FleetConfig | None = None, pool: PoolConfig | None = None, teacher: str | None = None,
        device: str | None = None, overrides: Sequence[str] = (), evaluate: bool = False,
        max_frames: int | None = None, width: int | None = None, height: int | None = None,
        fps: float | None = None, frames: int | None = None, seed: int = 0, segment_frames: int = SEGMENT_FRAMES,
        progress: bool = False, teacher_factory: TeacherFactory | None = None, init: str | None = None,
        warm_start: str = "none") -> FleetSummary:
    """Distill every stream of ``source`` (a manifest, folder, glob, ``s3://`` prefix or ``synthetic:SCENARIO``)
    into the run root ``out`` on Ray; the job's ``FleetSummary`` (also written as ``fleet_summary.json``).

    Per-stream keywords are those of ``odist.distill``; streams already done in ``out`` are skipped.
    ``init`` warm-starts every stream from a checkpoint (a manifest row's ``init`` overrides it);
    ``warm_start="fleet"`` starts streams from finished students (``odist.fleet.warm_start``).
    """
    source = api_types.location("source", source, "a manifest, folder, glob, s3:// prefix or synthetic:SCENARIO")
    out = api_types.location("out", out, "a run root: a folder, file:// or s3:// URI")
    check_stream_arguments(evaluate=evaluate, init=init, width=width, height=height, fps=fps, frames=frames,
                           seed=seed, progress=progress)
    api_types.text("warm_start", warm_start)
    resolved = resolve_config(config, overrides, teacher=teacher, device=device)
    sections = {name: value for name, value in (("fleet", fleet), ("pool", pool)) if value is not None}
    if sections:
        resolved = dataclasses.replace(resolved, **sections).validate()
    check_positive(max_frames=max_frames, segment_frames=segment_frames)
    options = StreamOptions(evaluate=evaluate, max_frames=max_frames, init=init, width=width, height=height,
                            fps=fps, frames=frames, seed=seed, segment_frames=segment_frames)
    f = resolved.fleet
    return run_fleet(source, out, resolved, address=f.address, workers=f.workers,
                     max_streams_in_flight=f.max_streams_in_flight, student_gpus=f.student_gpus,
                     student_cpus=f.student_cpus, options=options, retries=f.retries, progress=progress,
                     teacher_factory=teacher_factory, teacher_pool=resolved.pool if resolved.pool.enabled else None,
                     warm_start=warm_start, prewarm_workers=f.prewarm_workers)
