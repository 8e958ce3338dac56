"""Entry point for archive jobs on a Ray cluster, the same code path as ``odist run``.

::

    ray job submit --working-dir . -- python ray_jobs/archive_job.py MANIFEST_OR_PREFIX --out URI [odist run options]

It connects to the cluster the job runs on (``--address auto`` unless given) and exits with ``odist run``'s
status: 0 when the job ran (failed streams are listed), 2 on a user error.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The job's working directory holds the odist package; make it importable however the job is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odist.cli import main


def archive_job(argv: list[str]) -> int:
    """Run ``odist run`` with ``argv`` against the job's cluster."""
    if "--address" not in argv and not any(arg.startswith("--address=") for arg in argv):
        argv = [*argv, "--address", "auto"]
    return main(["run", *argv])


if __name__ == "__main__":
    sys.exit(archive_job(sys.argv[1:]))
