"""``odist.run(inputs, out, config)``: a fleet job, the library form of ``odist run``.

What each stream runs is the config tree, as for ``odist.distill``; where the job runs is its ``fleet`` section
(``fleet.warm_start`` included), and the shared teacher pool its ``pool`` section (used when ``pool.enabled``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from odist import api_types
from odist.config import OdistConfig
from odist.distill.arguments import refuse_moved, resolve_config
from odist.distill.options import StreamOptions
from odist.fleet.driver import run_fleet
from odist.fleet.runtime import TeacherFactory
from odist.fleet.summary import FleetSummary


def run(inputs: str, out: str, config: OdistConfig | str | os.PathLike[str] | None = None, *,
        overrides: Sequence[str] = (), progress: bool = False, teacher_factory: TeacherFactory | None = None,
        **moved: Any) -> FleetSummary:
    """Distill every stream of ``inputs`` (a manifest, folder, glob, ``s3://`` prefix or ``synthetic:SCENARIO``)
    into the run root ``out`` on Ray; the job's ``FleetSummary`` (also written as ``fleet_summary.json``).

    ``config`` and ``overrides`` as for ``odist.distill``; streams already done in ``out`` are skipped.
    ``distill.init`` warm-starts every stream from a checkpoint (a manifest row's ``init`` overrides it);
    ``fleet.warm_start: fleet`` starts streams from finished students (``odist.fleet.warm_start``).
    """
    refuse_moved("odist.run", moved)
    inputs = api_types.location("inputs", inputs, "a manifest, folder, glob, s3:// prefix or synthetic:SCENARIO")
    out = api_types.location("out", out, "a run root: a folder, file:// or s3:// URI")
    api_types.flag("progress", progress)
    resolved = resolve_config(config, overrides)
    f = resolved.fleet
    return run_fleet(inputs, out, resolved, address=f.address, workers=f.workers,
                     max_streams_in_flight=f.max_streams_in_flight, student_gpus=f.student_gpus,
                     student_cpus=f.student_cpus, options=StreamOptions.of(resolved), retries=f.retries,
                     progress=progress, teacher_factory=teacher_factory,
                     teacher_pool=resolved.pool if resolved.pool.enabled else None, warm_start=f.warm_start,
                     prewarm_workers=f.prewarm_workers)
