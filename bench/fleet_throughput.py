"""Throughput of the Ray fleet (``run_fleet``) against the same streams distilled back-to-back.

For each stream count N in ``--streams`` (default 1 4 16 64) a JSONL manifest of N short synthetic
streams (cycling through the scenarios, distinct stream ids; default 96x64, 24 frames, student width
0.25, one torch thread per student, oracle teacher) is distilled twice, each time into a fresh
temporary run root:

* ``fleet``: ``run_fleet`` with ``--workers`` student actors (default 2) on a local Ray started once for
  every N (``ray.init(num_cpus=--ray-cpus, include_dashboard=False)``, default 2 CPUs). With
  ``--teacher-pool`` the oracle runs as the shared teacher pool (``TeacherPoolConfig(min_replicas=1,
  max_replicas=2, num_cpus=0.5)``) and the batch sizes its replicas labelled are read from the replicas
  just before the pool is stopped.
* ``sequential``: ``distill_stream`` on every stream in turn in this process, with the same config,
  options and a locally built oracle teacher (built once, as a fleet worker keeps its teacher).

``--prewarm both`` (the default) makes each fleet run twice, each time on a Ray of its own: first with cold
workers (no setup hook: a worker imports torch and odist, and sets up its kernels, on its first stream),
then with the job's ``worker_process_setup_hook`` that ``odist run`` installs (``odist.fleet.prewarm``:
each worker process does that as it starts). The sequential run is made once per N.

Reported per N: wall seconds and frames/s of both, the raw ratio fleet wall / sequential wall, and the
Ray overhead ratio::

    overhead = fleet wall / (sequential wall / min(workers, cores))

where workers = the workers the fleet started (``--workers``, at most N) and cores = min(``--ray-cpus``,
CPUs of this machine). 1.0 means the fleet is exactly as fast as a
perfect split of the sequential work over its parallel workers; above 1.0 is what Ray (actor start,
scheduling, serialisation, the driver's polling, the teacher pool's round trips) costs on top.

``--many N`` (default 0: skipped) runs one more fleet job of N tiny streams (``--many-width`` x
``--many-height``, ``--many-frames`` frames; default 64x64, 4 frames: JITNet's batch norm needs more
than 1x1 at its deepest level, which 32x32 frames do not give) and reports its wall time and the
driver's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, before and after the job), to show
what the driver and Ray's object store hold at that stream count.

Results go to ``bench/results/fleet_throughput.json`` (rewritten after every N).

The fleet's fixed cost at realistic stream lengths (300 frames at 320x180), cold against pre-warmed::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/fleet_throughput.py \\
        --streams 16 64 --frames 300 --width 320 --height 180

Run (default sizes)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/fleet_throughput.py

With the shared teacher pool and a large run of tiny streams::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/fleet_throughput.py \\
        --teacher-pool --many 1000

Tiny check::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/fleet_throughput.py \\
        --streams 1 2 --frames 8 --many 4
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray
from _common import (
    RESULTS_DIR,
    describe_environment,
    environment,
    fmt,
    markdown_table,
    set_threads,
    write_manifest,
    write_results,
)
from ray import serve

from odist.config import OdistConfig, load_config
from odist.distill.pipeline import StreamOptions, distill_stream
from odist.fleet import teacher_pool as tp
from odist.fleet.driver import run_fleet
from odist.fleet.prewarm import worker_runtime_env
from odist.models.teachers import build_teacher
from odist.video.manifest import load_streams

POOL_MIN_REPLICAS, POOL_MAX_REPLICAS, POOL_REPLICA_CPUS = 1, 2, 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", nargs="*", type=int, default=[1, 4, 16, 64], metavar="N",
                   help="stream counts to measure (default 1 4 16 64; none: only --many)")
    p.add_argument("--width", type=int, default=96, help="frame width (default 96)")
    p.add_argument("--height", type=int, default=64, help="frame height (default 64)")
    p.add_argument("--frames", type=int, default=24, help="frames per stream (default 24)")
    p.add_argument("--seed", type=int, default=0, help="synthetic scene seed (default 0)")
    p.add_argument("--workers", type=int, default=2, help="fleet student workers (default 2)")
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--student-cpus", type=float, default=None,
                   help="CPUs each student worker asks Ray for (default 1; with --teacher-pool, what the pool's "
                        "largest size leaves, shared by the workers)")
    p.add_argument("--teacher-pool", action="store_true",
                   help="fleet students ask a shared teacher pool (min 1, max 2 replicas, 0.5 CPU each)")
    p.add_argument("--many", type=int, default=0, metavar="N",
                   help="also run one fleet job of N tiny streams and report the driver's peak RSS (default 0: skip)")
    p.add_argument("--many-width", type=int, default=64, help="--many frame width (default 64)")
    p.add_argument("--many-height", type=int, default=64, help="--many frame height (default 64)")
    p.add_argument("--many-frames", type=int, default=4, help="--many frames per stream (default 4)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, applied after the defaults here (repeatable)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per student (default 1)")
    p.add_argument("--prewarm", choices=("both", "on", "off"), default="both",
                   help="fleet workers pre-warmed by the job's setup hook (odist.fleet.prewarm), cold, or both "
                        "in turn, each on its own Ray (default both)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "fleet_throughput.json", help="JSON results path")
    args = p.parse_args(argv)
    if any(n < 1 for n in args.streams) or args.many < 0 or args.workers < 1 or args.ray_cpus < 1:
        p.error("stream counts, --workers and --ray-cpus must be positive; --many 0 or more")
    if args.student_cpus is None:
        left = args.ray_cpus - (POOL_MAX_REPLICAS * POOL_REPLICA_CPUS if args.teacher_pool else 0.0)
        args.student_cpus = 1.0 if not args.teacher_pool else max(left, 0.0) / args.workers
    return args


def bench_config(args: argparse.Namespace) -> OdistConfig:
    return load_config(overrides=["student.width=0.25", f"threads={args.threads}", "teacher.name=oracle",
                                  "device=cpu", *args.overrides], environ={})



def pool_config() -> tp.TeacherPoolConfig:
    return tp.TeacherPoolConfig(min_replicas=POOL_MIN_REPLICAS, max_replicas=POOL_MAX_REPLICAS,
                                num_cpus=POOL_REPLICA_CPUS, start_timeout_s=120.0)


@contextlib.contextmanager
def replica_stats(sink: list[dict[str, Any]]) -> Iterator[None]:
    """Collect every pool replica's ``stats()`` just before ``run_fleet`` stops the pool."""
    original = tp.stop_teacher_pool

    def stop(name: str = tp.DEFAULT_POOL_NAME) -> None:
        try:
            handle = serve.get_app_handle(name)
            seen: dict[str, dict[str, Any]] = {}
            running = tp.teacher_pool_replicas(name).get("RUNNING", 1)
            for _ in range(8 * running):  # requests are routed to a random replica: ask until each answered
                stats = handle.stats.remote().result(timeout_s=30)
                seen[stats["replica"]] = stats
                if len(seen) >= running:
                    break
            sink.extend(seen.values())
        except Exception as exc:  # the stats are extra; never fail the measurement for them
            print(f"could not read the teacher pool's replica stats: {exc}", file=sys.stderr)
        original(name)

    tp.stop_teacher_pool = stop
    try:
        yield
    finally:
        tp.stop_teacher_pool = original


@contextlib.contextmanager
def replica_timeline(sink: list[list[float]], period_s: float = 0.5) -> Iterator[None]:
    """Sample the running replicas every ``period_s`` while the job runs: [[seconds, replicas], ...] at changes."""
    stop = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        last = None
        while not stop.wait(period_s):
            try:
                running = tp.teacher_pool_replicas().get("RUNNING", 0)
            except Exception:  # Serve not up yet, or already gone
                continue
            if running != last:
                sink.append([round(time.perf_counter() - started, 1), running])
                last = running

    thread = threading.Thread(target=sample, name="replica-timeline", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_fleet_job(manifest: Path, config: OdistConfig, options: StreamOptions,
                  args: argparse.Namespace) -> dict[str, Any]:
    """One ``run_fleet`` job into a fresh run root: its summary numbers and (with the pool) replica stats."""
    stats: list[dict[str, Any]] = []
    timeline: list[list[float]] = []
    sampler = replica_timeline(timeline) if args.teacher_pool else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="fleet-run-") as out, replica_stats(stats), sampler:
        started = time.perf_counter()
        summary = run_fleet(str(manifest), out, config, workers=args.workers, max_streams_in_flight=None,
                            student_gpus=0.0, student_cpus=args.student_cpus, options=options, retries=2,
                            progress=False, teacher_pool=pool_config() if args.teacher_pool else None)
        outer = time.perf_counter() - started
    stream_seconds = [o["seconds"] for o in summary.outcomes if o["status"] == "done"]
    result = {"wall_seconds": summary.wall_seconds, "call_seconds": outer, "frames": summary.frames,
              "stream_seconds_total": sum(stream_seconds),
              "stream_seconds_mean": sum(stream_seconds) / len(stream_seconds) if stream_seconds else None,
              "frames_per_second": summary.frames_per_second, "done": summary.done, "failed": summary.failed,
              "workers": summary.workers, "failures": summary.failures[:5]}
    if args.teacher_pool:
        sizes: Counter[int] = Counter()
        for s in stats:
            sizes.update({int(k): v for k, v in s["batch_sizes"].items()})
        result["teacher_pool"] = {"replicas": stats, "batch_sizes": dict(sorted(sizes.items())),
                                  "replica_timeline": timeline,
                                  "mean_batch_size": (sum(k * v for k, v in sizes.items()) / sum(sizes.values())
                                                      if sizes else None)}
    return result


def run_sequential(manifest: Path, config: OdistConfig, options: StreamOptions) -> dict[str, Any]:
    """The same streams, one after another in this process, into a fresh run root."""
    specs = load_streams(str(manifest))
    set_threads(config.threads)
    teacher = build_teacher(config.teacher.name, config.teacher, config.classes, config.device)
    frames = 0
    with tempfile.TemporaryDirectory(prefix="fleet-seq-") as out:
        started = time.perf_counter()
        for spec in specs:
            summary = distill_stream(spec, out, config, teacher, options)
            frames += int(summary["frames"])
        wall = time.perf_counter() - started
    return {"wall_seconds": wall, "frames": frames, "frames_per_second": frames / wall if wall > 0 else None,
            "stream_seconds_mean": wall / len(specs)}


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def parallel_slots(workers: int, args: argparse.Namespace) -> int:
    """min(workers, cores): the workers the fleet started, cores = min(--ray-cpus, this machine's CPUs)."""
    return max(1, min(workers, args.ray_cpus, os.cpu_count() or 1))


def measure(n: int, prewarm: bool, folder: Path, config: OdistConfig, options: StreamOptions,
            args: argparse.Namespace, sequential_runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The fleet job of ``n`` streams on the running Ray, against their sequential run (made once per ``n``)."""
    manifest = write_manifest(folder, n)
    label = f"{n} streams, workers {'pre-warmed' if prewarm else 'cold'}"
    print(f"{label}: fleet ...", file=sys.stderr)
    fleet = run_fleet_job(manifest, config, options, args)
    print(f"{label}: fleet {fleet['wall_seconds']:.1f} s", file=sys.stderr)
    if n not in sequential_runs:
        print(f"{n} streams: sequential ...", file=sys.stderr)
        sequential_runs[n] = run_sequential(manifest, config, options)
        print(f"{n} streams: sequential {sequential_runs[n]['wall_seconds']:.1f} s", file=sys.stderr)
    sequential = sequential_runs[n]
    slots = parallel_slots(fleet["workers"], args)
    return {"streams": n, "prewarm": prewarm, "fleet": fleet, "sequential": sequential, "parallel_slots": slots,
            "raw_ratio": fleet["wall_seconds"] / sequential["wall_seconds"],
            # Ray's cost per stream: a worker's time on one stream over the same stream's time back-to-back;
            # the rest of the fleet's wall time is start-up (worker processes, torch import) and waiting.
            "per_stream_ratio": (fleet["stream_seconds_mean"] / sequential["stream_seconds_mean"]
                                 if fleet.get("stream_seconds_mean") else None),
            "startup_seconds": fleet["wall_seconds"] - fleet["stream_seconds_total"] / fleet["workers"],
            "overhead_ratio": fleet["wall_seconds"] / (sequential["wall_seconds"] / slots)}


def measure_many(folder: Path, config: OdistConfig, args: argparse.Namespace) -> dict[str, Any]:
    manifest = write_manifest(folder, args.many, prefix="m")
    options = StreamOptions(width=args.many_width, height=args.many_height, frames=args.many_frames, seed=args.seed)
    before = max_rss_mb()
    print(f"--many {args.many}: fleet ...", file=sys.stderr)
    fleet = run_fleet_job(manifest, config, options, args)
    print(f"--many {args.many}: {fleet['wall_seconds']:.1f} s", file=sys.stderr)
    return {"streams": args.many, "width": args.many_width, "height": args.many_height, "frames": args.many_frames,
            "fleet": fleet, "driver_max_rss_mb_before": before, "driver_max_rss_mb_after": max_rss_mb()}


@contextlib.contextmanager
def local_ray(args: argparse.Namespace, prewarm: bool) -> Iterator[None]:
    """A local Ray of ``--ray-cpus`` CPUs for one measurement, its workers pre-warmed or cold."""
    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env=worker_runtime_env(prewarm))
    try:
        yield
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    config = bench_config(args)
    options = StreamOptions(width=args.width, height=args.height, frames=args.frames, seed=args.seed)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "fleet_throughput", "environment": env,
                               "args": vars(args) | {"out": args.out.name}, "config": config.to_dict(),
                               "overhead_formula": "fleet wall / (sequential wall / min(workers, cores))",
                               "runs": [], "many": None}
    print(f"{describe_environment(env)}; {args.width}x{args.height}, {args.frames} frames, {args.workers} workers "
          f"on a {args.ray_cpus}-CPU Ray, teacher pool {'on' if args.teacher_pool else 'off'}", file=sys.stderr)
    modes = {"both": [False, True], "on": [True], "off": [False]}[args.prewarm]
    sequential_runs: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        for n in args.streams:
            for prewarm in modes:
                with local_ray(args, prewarm):
                    payload["runs"].append(measure(n, prewarm, Path(tmp), config, options, args, sequential_runs))
                write_results(args.out, payload)
        if args.many:
            with local_ray(args, modes[-1]):
                payload["many"] = measure_many(Path(tmp), config, args)
            write_results(args.out, payload)
    print_report(payload, args)
    return 0


def results_table(runs: list[dict[str, Any]], pool: bool) -> str:
    headers = ["streams", "workers", "frames", "fleet wall s", "fleet frames/s", "sequential wall s",
               "sequential frames/s",
               "min(workers, cores)", "raw ratio fleet/seq", "overhead fleet/(seq/min(workers,cores))",
               "per-stream s fleet / seq", "fleet wall - stream work per worker, s"]
    if pool:
        headers += ["teacher batch sizes (size: count)", "replicas over time (s: running)"]
    rows = []
    for r in runs:
        f, s = r["fleet"], r["sequential"]
        row = [str(r["streams"]), "pre-warmed" if r.get("prewarm") else "cold", str(f["frames"]),
               fmt(f["wall_seconds"], 2), fmt(f["frames_per_second"], 1),
               fmt(s["wall_seconds"], 2), fmt(s["frames_per_second"], 1), str(r["parallel_slots"]),
               fmt(r["raw_ratio"], 2, "x"), fmt(r["overhead_ratio"], 2, "x"),
               f'{fmt(f.get("stream_seconds_mean"), 2)} / {fmt(s.get("stream_seconds_mean"), 2)}',
               fmt(r.get("startup_seconds"), 1)]
        if pool:
            sizes = f.get("teacher_pool", {}).get("batch_sizes") or {}
            timeline = f.get("teacher_pool", {}).get("replica_timeline") or []
            row.append(" ".join(f"{k}:{v}" for k, v in sizes.items()) or "n/a")
            row.append(" ".join(f"{t:g}s:{n}" for t, n in timeline) or "n/a")
        rows.append(row)
    return markdown_table(headers, rows)


def print_report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    env = payload["environment"]
    print("# Fleet throughput vs sequential distillation\n")
    print(f"{describe_environment(env)}. Synthetic {args.width}x{args.height}, {args.frames} frames per stream, "
          f"student width 0.25, {args.threads} torch thread(s), oracle teacher; fleet: {args.workers} workers "
          f"({args.student_cpus:g} CPU each) on a local {args.ray_cpus}-CPU Ray, teacher pool "
          f"{'on (1..2 replicas, 0.5 CPU each)' if args.teacher_pool else 'off'}; overrides: "
          f"{', '.join(args.overrides) or 'none'}.\n")
    if payload["runs"]:
        print("Overhead = fleet wall / (sequential wall / min(workers, cores)), workers = those the fleet started "
              f"(at most N), cores = {min(args.ray_cpus, os.cpu_count() or 1)}; 1.0 = a perfect split of the "
              "sequential work over the workers.\n")
        print(results_table(payload["runs"], args.teacher_pool))
    many = payload["many"]
    if many:
        f = many["fleet"]
        print(f"\n## {many['streams']} tiny streams ({many['width']}x{many['height']}, {many['frames']} frames)\n")
        print(markdown_table(
            ["streams", "done", "failed", "fleet wall s", "streams/s", "driver peak RSS MB before", "after"],
            [[str(many["streams"]), str(f["done"]), str(f["failed"]), fmt(f["wall_seconds"], 1),
              fmt(many["streams"] / f["wall_seconds"], 1), fmt(many["driver_max_rss_mb_before"], 0),
              fmt(many["driver_max_rss_mb_after"], 0)]]))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
