"""The fleet driver at many streams: its peak RSS and wall time at 1k (5k, 10k) tiny archived streams.

For each stream count N in ``--streams`` (default 1000) a JSONL manifest of N tiny synthetic streams
(``--width`` x ``--height``, ``--frames`` frames; default 64x64, 4 frames; student width 0.25, oracle
teacher, one torch thread) is distilled by ``run_fleet`` with ``--workers`` workers (default 2) on a new
local 2-CPU Ray, in a fresh driver process per run, into a fresh temporary run root. Reported per run:
wall seconds, streams/s, and the driver process's own memory (Ray's and the workers' processes are not
in it): RSS after importing the driver, peak RSS (``VmHWM``), the growth between the two, the peaks
of its private and shared-memory parts (sampled every 0.1 s), and whether the driver loaded torch.

``--compare-root DIR`` (e.g. a checkout of the code before a change) runs every N a second time with
``PYTHONPATH=DIR``, in the same run, so the two drivers are measured side by side on the same machine.

Results go to ``bench/results/driver_scale.json``.

Run::

    python bench/driver_scale.py --streams 1000 5000 --compare-root /path/to/checkout-before

Tiny check::

    python bench/driver_scale.py --streams 3 --frames 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (``VmRSS``, or a part of it: ``RssAnon``, ``RssShmem``), in MB,
    from ``/proc/self/status`` (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class PeakSampler:
    """The peak of the driver's private (``RssAnon``) and shared-memory (``RssShmem``: Ray's object store
    pages it maps) resident memory, sampled every ``period_s`` in a thread."""

    def __init__(self, period_s: float = 0.1) -> None:
        import threading

        self.peaks = {"RssAnon": 0.0, "RssShmem": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period_s,), daemon=True)
        self._thread.start()

    def _run(self, period_s: float) -> None:
        while not self._stop.wait(period_s):
            for field in self.peaks:
                self.peaks[field] = max(self.peaks[field], rss_mb(field))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def child(args: argparse.Namespace) -> int:
    """One driver: run the fleet job and print its measurements as one JSON line."""
    import logging

    import odist.fleet.driver as fleet_driver
    from odist.config import load_config
    try:
        from odist.distill.options import StreamOptions
    except ImportError:  # a checkout from before the driver stopped importing torch
        from odist.distill.pipeline import StreamOptions

    config = load_config(overrides=["student.width=0.25", "threads=1", "teacher.name=oracle", "device=cpu"],
                         environ={})
    logging.getLogger("ray").setLevel(logging.WARNING)
    before = rss_mb()
    sampler = PeakSampler()
    with tempfile.TemporaryDirectory(prefix="driver-scale-") as out:
        started = time.perf_counter()
        summary = fleet_driver.run_fleet(args.child_manifest, out, config, workers=args.workers, student_cpus=1.0,
                                         options=StreamOptions(width=args.width, height=args.height,
                                                               frames=args.frames),
                                         retries=2, progress=False)
        wall = time.perf_counter() - started
    peak = rss_mb("VmHWM")  # not ru_maxrss, which keeps the forking parent's size across exec
    sampled = sampler.stop()
    print(json.dumps({"wall_seconds": wall, "done": summary.done, "failed": summary.failed,
                      "rss_after_import_mb": before, "peak_rss_mb": peak, "rss_end_mb": rss_mb(),
                      "growth_mb": peak - before,
                      "peak_private_mb": sampled["RssAnon"], "peak_shared_mb": sampled["RssShmem"],
                      "torch_in_driver": "torch" in sys.modules,
                      "odist_file": fleet_driver.__file__}))
    return 0



def run_driver(manifest: Path, code_root: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(code_root), RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    command = [sys.executable, __file__, "--child-manifest", str(manifest), "--workers", str(args.workers),
               "--width", str(args.width), "--height", str(args.height), "--frames", str(args.frames)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=code_root)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the driver under {code_root} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", nargs="+", type=int, default=[1000], help="stream counts (default 1000)")
    p.add_argument("--width", type=int, default=64, help="frame width (default 64)")
    p.add_argument("--height", type=int, default=64, help="frame height (default 64)")
    p.add_argument("--frames", type=int, default=4, help="frames per stream (default 4)")
    p.add_argument("--workers", type=int, default=2, help="fleet workers (default 2)")
    p.add_argument("--compare-root", type=Path, default=None,
                   help="also run each N with this checkout's odist (the code before), side by side")
    p.add_argument("--child-manifest", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "driver_scale.json", help="JSON results path")
    args = p.parse_args(argv)
    if min([*args.streams, args.frames, args.workers]) < 1:
        p.error("--streams, --frames and --workers must be positive")
    if args.compare_root is not None and not (args.compare_root / "odist").is_dir():
        p.error(f"--compare-root {args.compare_root} holds no odist package: pass a checkout of this repository")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_manifest:
        return child(args)
    # Here, not at the top: ``_common`` imports torch, which a driver process must not be charged for.
    from _common import describe_environment, environment, fmt, markdown_table, write_manifest, write_results

    env = environment("cpu")
    roots = {"this": ROOT} | ({"before": args.compare_root.resolve()} if args.compare_root else {})
    payload: dict[str, Any] = {"benchmark": "driver_scale", "environment": env,
                               "args": vars(args) | {"out": args.out.name, "compare_root": str(args.compare_root)},
                               "runs": []}
    with tempfile.TemporaryDirectory(prefix="driver-scale-manifests-") as tmp:
        for n in args.streams:
            manifest = write_manifest(Path(tmp), n)
            for label, root in roots.items():
                print(f"{n} streams, {label} ({root}) ...", file=sys.stderr)
                result = {"streams": n, "code": label, **run_driver(manifest, root, args)}
                print(f"  {result['wall_seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB", file=sys.stderr)
                payload["runs"].append(result)
                write_results(args.out, payload)
    print("# The fleet driver at many streams\n")
    print(f"{describe_environment(env)}. Tiny synthetic streams {args.width}x{args.height}, {args.frames} frames, "
          f"{args.workers} workers on a local Ray; one fresh driver process per run"
          + (", both codes in this one run" if len(roots) > 1 else "") + ".\n")
    rows = [[str(r["streams"]), r["code"], str(r["done"]), str(r["failed"]), fmt(r["wall_seconds"], 1),
             fmt(r["streams"] / r["wall_seconds"], 1), fmt(r["rss_after_import_mb"], 0), fmt(r["peak_rss_mb"], 0),
             fmt(r["growth_mb"], 0), fmt(r.get("peak_private_mb"), 0), fmt(r.get("peak_shared_mb"), 0),
             str(r.get("torch_in_driver", "?")).lower()] for r in payload["runs"]]
    print(markdown_table(["streams", "code", "done", "failed", "wall s", "streams/s", "driver RSS after import MB",
                          "driver peak RSS MB", "growth MB", "peak private MB", "peak shared MB",
                          "torch in driver"], rows))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
