"""What one short stream costs a fleet worker: wall and CPU milliseconds per stream, without Ray.

A fleet worker's ``StudentWorker.process`` runs N tiny synthetic streams (default 64x64, 4 frames, student width
0.25, oracle teacher, one torch thread) one after the other in one process, into a fresh local run root; the
first stream (imports, first-use set-up) is left out of the timing. CPU time is the process's (every thread),
so on a loaded machine it tells the work apart from the waiting that wall time adds. ``--compare-root DIR``
runs the same in a process with another checkout's code, and ``--repeats`` interleaves the two; ``--set``
applies config overrides to both (e.g. ``distill.max_updates=0``: the per-stream overhead without the
student's updates).

Results go to ``bench/results/stream_overhead.json``.

Run::

    python bench/stream_overhead.py --streams 100 --repeats 3 --compare-root /path/to/checkout-before
    python bench/stream_overhead.py --streams 100 --repeats 3 --compare-root /path/to/checkout-before \\
        --set distill.max_updates=0 --out bench/results/stream_overhead_no_updates.json

Tiny check::

    python bench/stream_overhead.py --streams 3 --frames 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def child(args: argparse.Namespace) -> int:
    """One process: the streams of ``--child-manifest`` through one ``StudentWorker``; one JSON line."""
    import torch

    from odist.config import load_config
    from odist.distill.options import StreamOptions
    from odist.fleet.student_actor import JobOptions

    try:  # this checkout's names; --compare-root may run an older checkout, where they were others
        from odist.fleet.student_actor import StudentWorker
        from odist.video.manifest import load_streams
    except ImportError:
        from odist.fleet.manifest import load_streams

        from odist.fleet.student_actor import StreamWorker as StudentWorker

    torch.set_num_threads(1)
    config = load_config(overrides=["student.width=0.25", "threads=1", "teacher.name=oracle", "device=cpu",
                                    *args.overrides], environ={})
    specs = load_streams(args.child_manifest)
    with tempfile.TemporaryDirectory(prefix="stream-overhead-", dir=args.scratch) as out:
        job = JobOptions(out, config, StreamOptions(width=args.width, height=args.height, frames=args.frames))
        worker = StudentWorker()
        first = worker.process(specs[0], job)
        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = [worker.process(spec, job) for spec in specs[1:]]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        failed = [o.error for o in [first, *outcomes] if o.status != "done"]
    timed = max(len(specs) - 1, 1)
    print(json.dumps({"streams_timed": len(specs) - 1, "wall_ms_per_stream": 1000 * wall / timed,
                      "cpu_ms_per_stream": 1000 * cpu / timed, "failed": len(failed),
                      "first_error": failed[0] if failed else None}))
    return 0


def run_child(manifest: Path, code_root: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(code_root), OMP_NUM_THREADS="1")
    command = [sys.executable, __file__, "--child-manifest", str(manifest), "--width", str(args.width),
               "--height", str(args.height), "--frames", str(args.frames),
               *(["--scratch", args.scratch] if args.scratch else []),
               *[f"--set={override}" for override in args.overrides]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=code_root)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the streams under {code_root} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=100, help="streams per run, the first one untimed (default 100)")
    p.add_argument("--width", type=int, default=64, help="frame width (default 64)")
    p.add_argument("--height", type=int, default=64, help="frame height (default 64)")
    p.add_argument("--frames", type=int, default=4, help="frames per stream (default 4)")
    p.add_argument("--repeats", type=int, default=1, help="runs of each code, interleaved (default 1)")
    p.add_argument("--compare-root", type=Path, default=None,
                   help="also run with this checkout's odist (the code before), interleaved")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run (repeatable)")
    p.add_argument("--scratch", default=None, help="folder for the run roots (default: the system's temp folder)")
    p.add_argument("--child-manifest", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "stream_overhead.json", help="JSON results path")
    args = p.parse_args(argv)
    if args.streams < 2 or min(args.frames, args.repeats, args.width, args.height) < 1:
        p.error("--streams must be at least 2 (the first is untimed); --frames and --repeats positive")
    if args.compare_root is not None and not (args.compare_root / "odist").is_dir():
        p.error(f"--compare-root {args.compare_root} holds no odist package: pass a checkout of this repository")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_manifest:
        return child(args)
    from _common import describe_environment, environment, fmt, markdown_table, write_manifest, write_results

    env = environment("cpu")
    codes = {"this": ROOT} | ({"before": args.compare_root.resolve()} if args.compare_root else {})
    payload: dict[str, Any] = {"benchmark": "stream_overhead", "environment": env,
                               "args": vars(args) | {"out": args.out.name, "compare_root": str(args.compare_root)},
                               "runs": []}
    with tempfile.TemporaryDirectory(prefix="stream-overhead-manifest-") as tmp:
        manifest = write_manifest(Path(tmp), args.streams)
        for repeat in range(args.repeats):
            for label, root in codes.items():
                print(f"{label} ({root}), run {repeat + 1} ...", file=sys.stderr)
                result = {"code": label, "repeat": repeat, **run_child(manifest, root, args)}
                print(f"  {result['wall_ms_per_stream']:.1f} ms wall, {result['cpu_ms_per_stream']:.1f} ms CPU "
                      "per stream", file=sys.stderr)
                payload["runs"].append(result)
                write_results(args.out, payload)
    print("# What one short stream costs a worker\n")
    print(f"{describe_environment(env)}. {args.streams - 1} timed streams of {args.width}x{args.height}, "
          f"{args.frames} frames, student width 0.25, one torch thread, oracle teacher, one StudentWorker in one "
          f"process (no Ray); overrides: {', '.join(args.overrides) or 'none'}"
          + ("; the codes interleaved in this one run" if len(codes) > 1 else "") + ".\n")
    rows = [[r["code"], str(r["repeat"] + 1), fmt(r["wall_ms_per_stream"], 1), fmt(r["cpu_ms_per_stream"], 1),
             fmt(1000 / r["cpu_ms_per_stream"], 1), str(r["failed"])] for r in payload["runs"]]
    for label in codes:
        mine = [r for r in payload["runs"] if r["code"] == label]
        rows.append([f"{label} (median)", "-", fmt(statistics.median(r["wall_ms_per_stream"] for r in mine), 1),
                     fmt(statistics.median(r["cpu_ms_per_stream"] for r in mine), 1),
                     fmt(statistics.median(1000 / r["cpu_ms_per_stream"] for r in mine), 1), "-"])
    print(markdown_table(["code", "run", "wall ms / stream", "CPU ms / stream", "streams/s per busy core", "failed"],
                         rows))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
