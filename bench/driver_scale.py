"""The fleet driver at many streams: its peak RSS and wall time at 1k (5k, 10k) tiny archived streams.

For each stream count N in ``--streams`` (default 1000) a JSONL manifest of N tiny synthetic streams
(``--width`` x ``--height``, ``--frames`` frames; default 64x64, 4 frames; student width 0.25, oracle
teacher, one torch thread) is distilled by ``run_fleet`` with ``--workers`` workers (default 2) on a new
local 2-CPU Ray, in a fresh driver process per run, into a fresh temporary run root. Reported per run:
wall seconds, streams/s, and the driver process's own memory (Ray's and the workers' processes are not
in it): RSS after importing the driver, peak RSS (``VmHWM``), the growth between the two, the peaks
of its private and shared-memory parts (sampled every 0.1 s), and whether the driver loaded torch.

``--compare-root DIR`` (e.g. a checkout of the code before a change) runs every N a second time with
``PYTHONPATH=DIR``, in the same run, so the two drivers are measured side by side on the same machine;
``--variant NAME:KEY=VALUE,...`` adds runs of this checkout with other settings, ``--repeats`` interleaves
every code that many times, and ``--ray-apart`` starts Ray (``--ray-cpus``) before the timed span, so the
wall time covers the workers' start-up and the streams (Ray's start-up is reported apart). The bytes of
checkpoints the run root keeps are reported per stream.

Results go to ``bench/results/driver_scale.json``.

Run::

    python bench/driver_scale.py --streams 1000 5000 --compare-root /path/to/checkout-before
    # many short streams: this code, with 4 workers at 0.5 CPU, and with weights-only final checkpoints,
    # against the code before, interleaved twice
    python bench/driver_scale.py --streams 1000 --repeats 2 --ray-apart --compare-root /path/to/checkout-before \
        --variant w4:workers=4,student_cpus=0.5 --variant fp16:storage.final_checkpoint=weights-fp16 \\
        --out bench/results/short_streams.json

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
FLEET_KEYS = ("workers", "student_cpus")  # --variant keys that size the fleet rather than set the config


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

    config = load_config(overrides=["student.width=0.25", "threads=1", "teacher.name=oracle", "device=cpu",
                                    *args.overrides], environ={})
    logging.getLogger("ray").setLevel(logging.WARNING)
    before = rss_mb()
    sampler = PeakSampler()
    ray_start = None
    if args.ray_apart:  # the fleet joins this Ray, so its wall time leaves Ray's own start-up out
        import ray

        from odist.fleet.local_ray import init_local_ray

        started = time.perf_counter()
        init_local_ray(num_cpus=args.ray_cpus, logging_level=logging.WARNING)
        ray_start = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="driver-scale-", dir=args.scratch) as out:
        started = time.perf_counter()
        summary = fleet_driver.run_fleet(args.child_manifest, out, config, workers=args.workers,
                                         student_cpus=args.student_cpus,
                                         options=StreamOptions(width=args.width, height=args.height,
                                                               frames=args.frames),
                                         retries=2, progress=False)
        wall = time.perf_counter() - started
        checkpoint_mb = sum(path.stat().st_size for path in Path(out).glob("streams/*/checkpoints/*")) / 1e6
    if ray_start is not None:
        ray.shutdown()
    peak = rss_mb("VmHWM")  # not ru_maxrss, which keeps the forking parent's size across exec
    sampled = sampler.stop()
    print(json.dumps({"wall_seconds": wall, "ray_start_seconds": ray_start, "checkpoint_mb": checkpoint_mb,
                      "done": summary.done, "failed": summary.failed,
                      "rss_after_import_mb": before, "peak_rss_mb": peak, "rss_end_mb": rss_mb(),
                      "growth_mb": peak - before,
                      "peak_private_mb": sampled["RssAnon"], "peak_shared_mb": sampled["RssShmem"],
                      "torch_in_driver": "torch" in sys.modules,
                      "odist_file": fleet_driver.__file__}))
    return 0



def run_driver(manifest: Path, code_root: Path, args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(code_root), RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    command = [sys.executable, __file__, "--child-manifest", str(manifest), "--workers", str(args.workers),
               "--student-cpus", str(args.student_cpus), "--ray-cpus", str(args.ray_cpus),
               "--width", str(args.width), "--height", str(args.height), "--frames", str(args.frames),
               *(["--ray-apart"] if args.ray_apart else []), *(["--scratch", args.scratch] if args.scratch else []),
               *[f"--set={override}" for override in overrides]]
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
    p.add_argument("--student-cpus", type=float, default=1.0, help="CPUs per worker (default 1)")
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--compare-root", type=Path, default=None,
                   help="also run each N with this checkout's odist (the code before), side by side")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for this checkout's runs (repeatable)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                   help="also run this checkout with these overrides (on top of --set), as code NAME; the keys "
                        "workers and student_cpus size its fleet instead (repeatable)")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs of each code per N, interleaved (this, before, this, before, ...; default 1)")
    p.add_argument("--ray-apart", action="store_true",
                   help="start Ray before timing, so the wall time covers the workers' start and the streams only")
    p.add_argument("--scratch", default=None, help="folder for the run roots (default: the system's temp folder)")
    p.add_argument("--child-manifest", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "driver_scale.json", help="JSON results path")
    args = p.parse_args(argv)
    if min([*args.streams, args.frames, args.workers, args.repeats]) < 1:
        p.error("--streams, --frames, --workers and --repeats must be positive")
    for variant in args.variant:
        if ":" not in variant or "=" not in variant:
            p.error(f"--variant {variant!r} is not NAME:KEY=VALUE[,KEY=VALUE]")
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
    base = {"workers": args.workers, "student_cpus": args.student_cpus}
    codes: dict[str, tuple[Path, list[str], dict[str, Any]]] = {"this": (ROOT, args.overrides, base)}
    for variant in args.variant:
        name, _, sets = variant.partition(":")
        pairs = [item.partition("=") for item in sets.split(",")]
        fleet = base | {key: float(value) if key == "student_cpus" else int(value)
                        for key, _, value in pairs if key in FLEET_KEYS}
        codes[name] = (ROOT, [*args.overrides, *(f"{k}={v}" for k, _, v in pairs if k not in FLEET_KEYS)], fleet)
    if args.compare_root:
        codes["before"] = (args.compare_root.resolve(), [], base)
    payload: dict[str, Any] = {"benchmark": "driver_scale", "environment": env,
                               "args": vars(args) | {"out": args.out.name, "compare_root": str(args.compare_root)},
                               "runs": []}
    with tempfile.TemporaryDirectory(prefix="driver-scale-manifests-") as tmp:
        for n in args.streams:
            manifest = write_manifest(Path(tmp), n)
            for repeat in range(args.repeats):
                for label, (root, overrides, fleet) in codes.items():
                    print(f"{n} streams, {label} ({root}, {' '.join(overrides) or 'defaults'}, {fleet}) ...",
                          file=sys.stderr)
                    result = {"streams": n, "code": label, "repeat": repeat, "overrides": overrides, **fleet,
                              **run_driver(manifest, root, argparse.Namespace(**(vars(args) | fleet)), overrides)}
                    print(f"  {result['wall_seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB",
                          file=sys.stderr)
                    payload["runs"].append(result)
                    write_results(args.out, payload)
    print("# The fleet driver at many streams\n")
    print(f"{describe_environment(env)}. Tiny synthetic streams {args.width}x{args.height}, {args.frames} frames, "
          f"{args.workers} workers ({args.student_cpus:g} CPU each) on a local {args.ray_cpus}-CPU Ray; one fresh "
          "driver process per run" + (", every code in this one run, interleaved" if len(codes) > 1 else "")
          + ("; Ray started before the timed span" if args.ray_apart else "") + ".\n")
    rows = [[str(r["streams"]), r["code"], " ".join(r.get("overrides") or []) or "-",
             f'{r.get("workers", args.workers)} x {r.get("student_cpus", args.student_cpus):g}', str(r["done"]),
             str(r["failed"]), fmt(r.get("ray_start_seconds"), 1), fmt(r["wall_seconds"], 1),
             fmt(r["streams"] / r["wall_seconds"], 1), fmt(r.get("checkpoint_mb", 0) * 1000 / r["streams"], 0),
             fmt(r["peak_rss_mb"], 0), str(r.get("torch_in_driver", "?")).lower()] for r in payload["runs"]]
    print(markdown_table(["streams", "code", "overrides", "workers x CPUs", "done", "failed", "Ray start s", "wall s",
                          "streams/s", "checkpoint kB / stream", "driver peak RSS MB", "torch in driver"], rows))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
