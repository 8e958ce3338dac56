"""Entry point for live camera jobs on a Ray cluster, the same code path as ``odist live``.

::

    ray job submit --working-dir . -- python ray_jobs/live_job.py CAMERAS.yaml --out URI [odist live options]

It connects to the cluster the job runs on (``--address auto`` unless given); stopping the job
(``ray job stop``) sends SIGTERM, which commits every camera. Exit status as ``odist live``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The job's working directory holds the odist package; make it importable however the job is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odist.cli import main


def live_job(argv: list[str]) -> int:
    """Run ``odist live`` with ``argv`` against the job's cluster."""
    if "--address" not in argv and not any(arg.startswith("--address=") for arg in argv):
        argv = [*argv, "--address", "auto"]
    return main(["live", *argv])


if __name__ == "__main__":
    sys.exit(live_job(sys.argv[1:]))
