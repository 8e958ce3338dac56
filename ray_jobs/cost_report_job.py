"""Entry point for a fleet cost report as a Ray job, the same code path as ``odist report``.

::

    ray job submit --working-dir . -- python ray_jobs/cost_report_job.py RUN_URI [RUN_URI ...] \\
        --format html --out report.html [--prices prices.yaml] [--top N] [--bucket hour]

The report reads the run roots from the node the job's driver runs on (an ``s3://`` URI works from any
node; so does an ``s3://`` ``--out``). Exits 0 when the report was written, 2 on a user error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The job's working directory holds the odist package; make it importable however the job is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odist.errors import OdistError
from odist.report.command import BUCKETS, FORMATS, run_report


def cost_report_job(argv: list[str]) -> int:
    """Run the report for ``argv`` (``odist report``'s arguments); print where it went."""
    parser = argparse.ArgumentParser(prog="cost_report_job.py", description="odist fleet cost report")
    parser.add_argument("runs", nargs="+", metavar="RUN_URI")
    parser.add_argument("--prices", default=None)
    parser.add_argument("--format", default="html", choices=FORMATS)
    parser.add_argument("--out", default=None)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--bucket", default="auto", choices=BUCKETS)
    args = parser.parse_args(argv)
    try:
        text, written = run_report(args.runs, prices=args.prices, fmt=args.format, out=args.out, top=args.top,
                                   bucket=args.bucket)
    except OdistError as exc:
        print(f"odist: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(text, end="")
    for location in written:
        print(f"wrote {location}")
    return 0


if __name__ == "__main__":
    sys.exit(cost_report_job(sys.argv[1:]))
