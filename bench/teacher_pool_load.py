"""The teacher pool at full load: labels/s against the ideal, latency, batch sizes, and autoscaling.

A benchmark teacher sleeps ``a + b x batch`` seconds per forward (``--a``, ``--b``; default 0.2 and 0.02,
so a batch of 8 takes 0.36 s) and returns exact labels, so the pool's own cost is all that is measured
and no CPU is spent. Closed-loop clients (threads of this process) each send one keyframe, wait for its
label, and send the next. For each pool variant, each replica count R in ``--replicas`` (default 1 2 4)
and each client count C in ``--clients`` (default 1 8 16 32), labels are counted over ``--window``
seconds after ``--warmup`` seconds. The variants, all measured in the same run:

* ``actor-pool`` (the baseline): R plain async Ray actors, each with the pool's ``FrameBatcher`` taking
  every waiting frame (no wait), clients sending to the actor with the fewest of their requests in flight;
* ``serve-window``: the Serve pool with ``pool.batching=window`` (``@serve.batch`` collects a
  ``batch_wait_timeout_s`` window, 50 ms, before each batch: the pool before adaptive batching);
* ``serve-adaptive``: the Serve pool with ``pool.batching=adaptive`` (the default): a request goes to the
  teacher at once unless the batcher expects the callers of its last batch back, for whom it waits at
  most ``batch_wait_timeout_s``;
* ``actors-adaptive``: odist's actor pool (``pool.implementation=actors``): the same adaptive replicas as
  plain Ray actors behind ``PooledTeacher``, no Serve router.

The ideal is what R replicas with zero overhead give C closed-loop clients: ``R x B / (a + b x B)`` at
saturation (C >= R x B, B = ``--max-batch``), and ``C / (a + b x ceil(C / R))`` below it. Reported per
cell: labels/s, % of ideal, label latency p50/p99, the per-request overhead beyond the forward at one
client (p50 latency - (a + b)), and the batch-size histogram (forwards of each size, from the replies).

``--scale-seconds S`` (default 30; 0 skips) then runs an autoscaled ``serve-adaptive`` pool (1 to
max(``--replicas``) replicas, 1 s up-scale and 4 s down-scale delay) under max(``--clients``) clients for
S seconds, then idle until it is back to one replica, and reports running replicas over time.

Results go to ``bench/results/teacher_pool_load.json``.

Run (default: 36 cells of 8 s, 9 pool starts and the scaling phase; 25 minutes on a loaded 2-core machine)::

    python bench/teacher_pool_load.py

Tiny check::

    python bench/teacher_pool_load.py --replicas 1 --clients 1 2 --warmup 0.5 --window 1 --a 0.02 --b 0.002 \\
        --scale-seconds 0
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, write_results
from ray import serve

from odist.config import TeacherConfig
from odist.fleet import teacher_pool as tp
from odist.fleet.local_ray import init_local_ray
from odist.models.teachers.base import TeacherResult
from odist.models.teachers.oracle import OracleTeacher
from odist.video.frame import Frame

CLASSES = ("background", "person", "vehicle", "bike")
SLEEP_TEACHER = "bench-sleep"
HEIGHT, WIDTH = 12, 16
VARIANTS = ("actor-pool", "serve-window", "serve-adaptive", "actors-adaptive")
TARGETS = {"one_client_overhead_ms": 20.0, "capacity_pct": 85.0, "saturation_pct": 95.0}


class SleepTeacher(OracleTeacher):
    """Exact labels after sleeping ``a + b x batch`` seconds: a teacher whose forward costs only time."""

    name = SLEEP_TEACHER

    def __init__(self, config: TeacherConfig, class_names: Sequence[str], a: float, b: float) -> None:
        super().__init__(config, class_names)
        self.a, self.b = a, b

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        time.sleep(self.a + self.b * len(frames))
        return super().label(frames)


def build_sleep_teacher(arg: str | None, config: TeacherConfig, class_names: Sequence[str],
                        device: str) -> SleepTeacher:
    a, b = (float(x) for x in (arg or "0.2,0.02").split(","))
    return SleepTeacher(config, class_names, a, b)


def register_sleep_teacher() -> None:
    """The replicas' setup: register ``bench-sleep:A,B`` in the replica's own teacher registry."""
    from odist.models.teachers.registry import TEACHERS

    if SLEEP_TEACHER not in TEACHERS.names():
        TEACHERS.register(SLEEP_TEACHER)(build_sleep_teacher)


def make_frame(index: int) -> Frame:
    return Frame(index=index, image=np.zeros((HEIGHT, WIDTH, 3), np.uint8), truth=np.zeros((HEIGHT, WIDTH), np.uint8))


@ray.remote(num_cpus=0)
class ActorReplica:
    """The baseline: a plain async Ray actor with the pool's greedy ``FrameBatcher``."""

    def __init__(self, a: float, b: float, max_batch: int, name: str) -> None:
        teacher = SleepTeacher(TeacherConfig(), CLASSES, a, b)
        self.batcher = tp.FrameBatcher(teacher, max_batch, name, gather_s=0.0)

    async def label(self, frame: Frame) -> tp.LabelReply:
        (future,) = self.batcher.submit([frame])
        return await future


class ActorPool:
    """Sends each frame to the actor with the fewest of this process's requests in flight."""

    def __init__(self, replicas: int, args: argparse.Namespace) -> None:
        self.actors = [ActorReplica.remote(args.a, args.b, args.max_batch, f"actor-{i}") for i in range(replicas)]
        self.in_flight = [0] * replicas
        self.lock = threading.Lock()
        ray.get([actor.__ray_ready__.remote() for actor in self.actors])

    def label(self, frame: Frame) -> int:
        with self.lock:
            index = min(range(len(self.actors)), key=self.in_flight.__getitem__)
            self.in_flight[index] += 1
        try:
            return ray.get(self.actors[index].label.remote(frame)).batch_size
        finally:
            with self.lock:
                self.in_flight[index] -= 1

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)


class OdistActorPool:
    """odist's actor pool (``start_actor_pool``): ``replicas`` fixed replicas behind ``PooledTeacher``."""

    def __init__(self, name: str, replicas: int, args: argparse.Namespace) -> None:
        self.name = name
        config = tp.TeacherPoolConfig(implementation="actors", min_replicas=replicas, max_replicas=replicas,
                                      max_batch_size=args.max_batch, num_cpus=0.0, start_timeout_s=300.0)
        handle = tp.start_actor_pool(config, f"{SLEEP_TEACHER}:{args.a},{args.b}", TeacherConfig(), CLASSES,
                                     name=name, setup=register_sleep_teacher)
        self.teacher = tp.PooledTeacher.for_pool(handle, CLASSES, config, pool_name=name)

    def label(self, frame: Frame) -> int:
        return self.teacher.submit([frame]).replies()[0].batch_size

    def close(self) -> None:
        tp.stop_actor_pool(self.name)


class ServePool:
    """The odist teacher pool (``start_teacher_pool``) with ``batching`` and fixed or autoscaled replicas."""

    def __init__(self, name: str, batching: str, args: argparse.Namespace, min_replicas: int, max_replicas: int,
                 **scaling: float) -> None:
        self.name = name
        config = tp.TeacherPoolConfig(min_replicas=min_replicas, max_replicas=max_replicas,
                                      max_batch_size=args.max_batch, batching=batching, num_cpus=0.0,
                                      max_ongoing_requests=args.max_ongoing, start_timeout_s=300.0,
                                      graceful_shutdown_timeout_s=1.0, **scaling)
        handle = tp.start_teacher_pool(config, f"{SLEEP_TEACHER}:{args.a},{args.b}", TeacherConfig(), CLASSES,
                                       name=name, setup=register_sleep_teacher)
        self.teacher = tp.PooledTeacher.for_pool(handle, CLASSES, config, pool_name=name)
        deadline = time.monotonic() + 300
        while self.running() < min_replicas and time.monotonic() < deadline:
            time.sleep(0.5)

    def running(self) -> int:
        return tp.teacher_pool_replicas(self.name).get("RUNNING", 0)

    def label(self, frame: Frame) -> int:
        return self.teacher.submit([frame]).replies()[0].batch_size

    def close(self) -> None:
        tp.stop_teacher_pool(self.name)


class Load:
    """``clients`` closed-loop clients, each labelling one frame at a time until ``stop()``."""

    def __init__(self, label: Callable[[Frame], int], clients: int) -> None:
        self.label = label
        self.stopped = threading.Event()
        self.records: list[list[tuple[float, float, int]]] = [[] for _ in range(clients)]
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._client, args=(k,), daemon=True) for k in range(clients)]
        for thread in self.threads:
            thread.start()

    def _client(self, k: int) -> None:
        frame = make_frame(k)
        while not self.stopped.is_set():
            sent = time.perf_counter()
            try:
                size = self.label(frame)
            except Exception as exc:  # counted, never fatal: the report shows them
                self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            done = time.perf_counter()
            self.records[k].append((done, done - sent, size))

    def stop(self) -> list[tuple[float, float, int]]:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=120)
        return [record for records in self.records for record in records]


def ideal_rate(replicas: int, clients: int, args: argparse.Namespace) -> float:
    """Labels/s of ``replicas`` overhead-free replicas under ``clients`` closed-loop clients."""
    if clients >= replicas * args.max_batch:
        return replicas * args.max_batch / (args.a + args.b * args.max_batch)
    return clients / (args.a + args.b * math.ceil(clients / replicas))


def regime(replicas: int, clients: int, max_batch: int) -> str:
    capacity = replicas * max_batch
    if clients == 1:
        return "one client"
    return "saturation" if clients > capacity else "capacity" if clients == capacity else "below capacity"


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def measure_cell(label: Callable[[Frame], int], replicas: int, clients: int,
                 args: argparse.Namespace) -> dict[str, Any]:
    load = Load(label, clients)
    started = time.perf_counter()
    time.sleep(args.warmup + args.window)
    records = load.stop()
    low, high = started + args.warmup, started + args.warmup + args.window
    window = [r for r in records if low <= r[0] < high]
    latencies = [r[1] for r in window]
    sizes = Counter(r[2] for r in window)
    ideal = ideal_rate(replicas, clients, args)
    rate = len(window) / args.window
    p50 = percentile(latencies, 50)
    return {"replicas": replicas, "clients": clients, "regime": regime(replicas, clients, args.max_batch),
            "labels": len(window), "labels_per_s": rate, "ideal_labels_per_s": ideal,
            "pct_of_ideal": 100 * rate / ideal,
            "latency_p50_s": p50, "latency_p99_s": percentile(latencies, 99),
            "overhead_ms": None if p50 is None or clients != 1 else 1000 * (p50 - args.a - args.b),
            # forwards of each size: every label of a batch of k reports k, so k labels mean one forward
            "batch_sizes": {k: round(v / k, 1) for k, v in sorted(sizes.items())},
            "mean_batch": (sum(k * v for k, v in sizes.items()) / sum(sizes.values())) if sizes else None,
            "errors": load.errors[:5], "error_count": len(load.errors)}


def start_variant(variant: str, replicas: int, args: argparse.Namespace) -> ActorPool | OdistActorPool | ServePool:
    if variant == "actor-pool":
        return ActorPool(replicas, args)
    if variant == "actors-adaptive":
        return OdistActorPool(f"load-{variant}-{replicas}", replicas, args)
    return ServePool(f"load-{variant}-{replicas}", variant.removeprefix("serve-"), args, replicas, replicas)


def measure_scaling(args: argparse.Namespace) -> dict[str, Any]:
    """An autoscaled adaptive pool: replicas over time under full load for ``--scale-seconds``, then idle."""
    top, clients = max(args.replicas), max(args.clients)
    pool = ServePool("load-scale", "adaptive", args, 1, top, target_ongoing_requests=float(args.max_batch),
                     upscale_delay_s=1.0, downscale_delay_s=4.0, look_back_period_s=2.0)
    timeline: list[list[float]] = []
    started = time.perf_counter()

    def sample(last: int | None) -> int:
        running = pool.running()
        if running != last:
            timeline.append([round(time.perf_counter() - started, 1), running])
        return running

    try:
        load = Load(pool.label, clients)
        last = None
        while time.perf_counter() - started < args.scale_seconds:
            last = sample(last)
            time.sleep(0.5)
        records = load.stop()
        stopped_at = time.perf_counter() - started
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            last = sample(last)
            if last == 1 and len(timeline) > 1:
                break
            time.sleep(0.5)
    finally:
        pool.close()
    return {"clients": clients, "max_replicas": top, "load_seconds": stopped_at, "labels": len(records),
            "max_running": max((n for _, n in timeline), default=0), "timeline": timeline,
            "errors": load.errors[:5], "error_count": len(load.errors)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", nargs="+", type=int, default=[1, 2, 4], help="replica counts (default 1 2 4)")
    p.add_argument("--clients", nargs="+", type=int, default=[1, 8, 16, 32], help="client counts (default 1 8 16 32)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="pools to measure (all)")
    p.add_argument("--max-batch", type=int, default=8, help="max batch size B (default 8)")
    p.add_argument("--max-ongoing", type=int, default=None,
                   help="the Serve pools' max_ongoing_requests per replica (default: the pool's, 8 x B)")
    p.add_argument("--a", type=float, default=0.2, help="forward seconds per batch (default 0.2)")
    p.add_argument("--b", type=float, default=0.02, help="forward seconds per frame of a batch (default 0.02)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before counting, per cell (default 2)")
    p.add_argument("--window", type=float, default=6.0, help="seconds counted, per cell (default 6)")
    p.add_argument("--scale-seconds", type=float, default=30.0,
                   help="seconds of full load on an autoscaled pool (default 30; 0 skips)")
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "teacher_pool_load.json", help="JSON results path")
    args = p.parse_args(argv)
    if min(args.replicas + args.clients + [args.max_batch]) < 1 or args.a < 0 or args.b < 0 or args.window <= 0:
        p.error("replicas, clients and --max-batch must be positive, --a/--b non-negative, --window positive")
    return args


def targets(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: the worst one-client overhead, capacity and saturation %, and whether each target is met."""
    out: dict[str, dict[str, Any]] = {}
    for variant in {c["variant"] for c in cells}:
        mine = [c for c in cells if c["variant"] == variant]
        overhead = [c["overhead_ms"] for c in mine if c["overhead_ms"] is not None]
        capacity = [c["pct_of_ideal"] for c in mine if c["regime"] == "capacity"]
        saturation = [c["pct_of_ideal"] for c in mine if c["regime"] == "saturation"]
        worst = {"one_client_overhead_ms": max(overhead) if overhead else None,
                 "capacity_pct": min(capacity) if capacity else None,
                 "saturation_pct": min(saturation) if saturation else None}
        met = {key: (None if value is None else value <= TARGETS[key] if key.endswith("_ms") else value >= TARGETS[key])
               for key, value in worst.items()}
        out[variant] = {"worst": worst, "met": met}
    baseline = {(c["replicas"], c["clients"]): c["labels_per_s"] for c in cells if c["variant"] == "actor-pool"}
    for variant, entry in out.items():
        ratios = [c["labels_per_s"] / baseline[(c["replicas"], c["clients"])] for c in cells
                  if c["variant"] == variant and baseline.get((c["replicas"], c["clients"]))]
        entry["worst_vs_baseline"] = min(ratios) if ratios else None
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "teacher_pool_load", "environment": env,
                               "args": vars(args) | {"out": args.out.name},
                               "ideal": "R x B / (a + b x B) at C >= R x B, else C / (a + b x ceil(C / R))",
                               "cells": [], "scaling": None}
    print(f"{describe_environment(env)}; forward {args.a:g} + {args.b:g} x batch s, max batch {args.max_batch}",
          file=sys.stderr)
    init_local_ray(num_cpus=args.ray_cpus, logging_level=logging.WARNING, log_to_driver=False)
    serve.start(proxy_location="Disabled", logging_config={"log_level": "WARNING"})
    try:
        for replicas in args.replicas:
            for variant in args.variants:
                pool = start_variant(variant, replicas, args)
                try:
                    for clients in args.clients:
                        cell = {"variant": variant, **measure_cell(pool.label, replicas, clients, args)}
                        print(f"{variant} R={replicas} C={clients}: {cell['labels_per_s']:.1f} labels/s, "
                              f"{cell['pct_of_ideal']:.0f}% of ideal, p50 {cell['latency_p50_s']}", file=sys.stderr)
                        payload["cells"].append(cell)
                        write_results(args.out, payload)
                finally:
                    pool.close()
        payload["targets"] = targets(payload["cells"])
        if args.scale_seconds > 0:
            payload["scaling"] = measure_scaling(args)
        write_results(args.out, payload)
    finally:
        serve.shutdown()
        ray.shutdown()
    print_report(payload, args)
    return 0


def cells_table(cells: list[dict[str, Any]]) -> str:
    headers = ["replicas", "clients", "regime", "pool", "labels/s", "ideal", "% of ideal", "p50 s", "p99 s",
               "overhead ms (1 client)", "forwards by batch size (size:count)", "errors"]
    rows = [[str(c["replicas"]), str(c["clients"]), c["regime"], c["variant"], fmt(c["labels_per_s"], 1),
             fmt(c["ideal_labels_per_s"], 1), fmt(c["pct_of_ideal"], 0), fmt(c["latency_p50_s"], 3),
             fmt(c["latency_p99_s"], 3), fmt(c["overhead_ms"], 0),
             " ".join(f"{k}:{v:g}" for k, v in c["batch_sizes"].items()) or "n/a", str(c["error_count"])]
            for c in sorted(cells, key=lambda c: (c["replicas"], c["clients"], VARIANTS.index(c["variant"])))]
    return markdown_table(headers, rows)


def targets_table(result: dict[str, dict[str, Any]]) -> str:
    def cell(entry: dict[str, Any], key: str, digits: int) -> str:
        value, met = entry["worst"][key], entry["met"][key]
        return "n/a" if value is None else f"{fmt(value, digits)} ({'met' if met else 'missed'})"

    rows = [[variant, cell(entry, "one_client_overhead_ms", 0), cell(entry, "capacity_pct", 0),
             cell(entry, "saturation_pct", 0), fmt(entry["worst_vs_baseline"], 2, "x")]
            for variant, entry in sorted(result.items(), key=lambda item: VARIANTS.index(item[0]))]
    return markdown_table(["pool", "worst overhead ms at 1 client (<= 20)", "worst % at capacity (>= 85)",
                           "worst % at saturation (>= 95)", "worst labels/s vs actor-pool (>= 1)"], rows)


def print_report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    print("# The teacher pool at full load\n")
    print(f"{describe_environment(payload['environment'])}. Teacher forward {args.a:g} + {args.b:g} x batch s "
          f"(a sleep), max batch {args.max_batch}; closed-loop clients; {args.warmup:g} s warm-up, "
          f"{args.window:g} s counted per cell; all pools measured in this one run.\n")
    print(f"Ideal: {payload['ideal']}.\n")
    print(cells_table(payload["cells"]))
    if payload.get("targets"):
        print("\n## Targets (worst cell of each pool)\n")
        print(targets_table(payload["targets"]))
    scaling = payload["scaling"]
    if scaling:
        timeline = " ".join(f"{t:g}s:{n}" for t, n in scaling["timeline"])
        print(f"\n## Autoscaling (serve-adaptive, 1..{scaling['max_replicas']} replicas, {scaling['clients']} "
              f"clients for {scaling['load_seconds']:.0f} s, then idle)\n")
        print(f"Running replicas over time (s:replicas): {timeline}; {scaling['labels']} labels, "
              f"{scaling['error_count']} errors.")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
