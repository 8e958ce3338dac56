"""Accuracy against cost of online distillation schedules on the synthetic scenarios.

For each synthetic scenario (seed 0, oracle teacher) the student is scored on every frame against the
teacher's labels (as ``odist distill --evaluate`` does; the scoring cost never enters the speed-ups)
under these schedules:

* ``teacher-every-frame``: no student; by definition mIoU 1.0, keyframe fraction 1, speed-up 1.0
  (computed, not run).
* ``fixed-stride-8``: a keyframe every 8 frames (``distill.strides=[8]``).
* ``adaptive``: the paper's schedule (the config defaults: stride ladder 8..64, up to 8 updates).
* ``frozen``: the adaptive schedule, but the student stops learning after its first K keyframes
  (``distill.freeze_after_keyframes=K``).

Reported per run: mIoU (with and without background) and per-class IoU over all frames, keyframe
fraction, SGD updates, speed-up over running the teacher on every frame by the paper's cost model and
measured (student seconds measured here, the oracle charged at ``teacher.charged_ms`` per frame), the
student's GFLOPs per frame, and the wall time of the run (frame rendering and scoring included).
``--set key=value`` overrides apply to every student schedule; the schedule's own override is applied
after them. Results go to ``bench/results/accuracy_vs_cost.json`` (rewritten after every run).

Targets checked at the end: adaptive mIoU >= 0.80 with cost-model speed-up >= 7x on every scenario;
adaptive beats frozen on mIoU; adaptive beats fixed-stride-8 on cost-model speed-up.

Run (full size)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/accuracy_vs_cost.py

Tiny check::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/accuracy_vs_cost.py \\
        --width 128 --height 72 --frames 40 --scenarios static_easy
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results
from tqdm import tqdm

from odist.config import load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.runner import Progress, StreamRunner
from odist.models.teachers import build_teacher
from odist.video.synthetic import SCENARIOS, SyntheticSource

SCHEDULES = ("teacher-every-frame", "fixed-stride-8", "adaptive", "frozen")
MIOU_TARGET = 0.80
SPEEDUP_TARGET = 7.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS),
                   help="synthetic scenarios to run (default: all)")
    p.add_argument("--schedules", nargs="+", choices=SCHEDULES, default=list(SCHEDULES),
                   help="schedules to compare (default: all)")
    p.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    p.add_argument("--height", type=int, default=360, help="frame height (default 360)")
    p.add_argument("--frames", type=int, default=900, help="frames per stream (default 900)")
    p.add_argument("--seed", type=int, default=0, help="synthetic scene seed (default 0)")
    p.add_argument("--freeze-after", type=int, default=8, metavar="K",
                   help="keyframes the frozen student learns from before it stops (default 8)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every student schedule, e.g. --set student.width=0.5 (repeatable)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N for the student (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "accuracy_vs_cost.json", help="JSON results path")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.freeze_after < 1:
        p.error("--freeze-after must be at least 1")
    return args


def schedule_overrides(schedule: str, freeze_after: int) -> list[str]:
    """The config overrides that define a student schedule."""
    return {
        "fixed-stride-8": ["distill.strides=[8]"],
        "adaptive": [],
        "frozen": [f"distill.freeze_after_keyframes={freeze_after}"],
    }[schedule]


def teacher_every_frame(scenario: str) -> dict[str, Any]:
    """The baseline row, by definition: the teacher agrees with itself and is the whole cost."""
    return {
        "scenario": scenario, "schedule": "teacher-every-frame", "computed": True, "overrides": [],
        "miou": 1.0, "miou_foreground": 1.0, "class_iou": None, "keyframe_fraction": 1.0, "updates": 0,
        "speedup_cost_model": 1.0, "speedup_measured": 1.0, "student_gflops_per_frame": 0.0, "wall_seconds": None,
    }


class DiscardSink:
    """A result sink that keeps nothing (only the summary matters here)."""

    def add(self, record: dict[str, Any], mask: np.ndarray) -> None:
        pass


def run_student(scenario: str, schedule: str, args: argparse.Namespace) -> dict[str, Any]:
    """Distil one stream under one schedule, scoring every frame against the oracle."""
    overrides = [*args.overrides, *schedule_overrides(schedule, args.freeze_after), f"device={args.device}"]
    config = load_config(overrides=overrides)
    source = SyntheticSource(scenario, seed=args.seed, width=args.width, height=args.height, frames=args.frames)
    teacher = build_teacher("oracle", config.teacher, config.classes, config.device)
    distiller = OnlineDistiller(config, teacher)
    runner = StreamRunner(distiller, DiscardSink(), evaluator=teacher)
    with progress_bar(f"{scenario} {schedule}", len(source), enabled=not args.no_progress) as show:
        runner.run(source, total=len(source), on_progress=show)
    summary = runner.summary(config.classes)
    return {
        "scenario": scenario, "schedule": schedule, "computed": False, "overrides": overrides,
        **{key: summary[key] for key in ("miou", "miou_foreground", "class_iou", "keyframe_fraction", "updates",
                                         "speedup_cost_model", "speedup_measured", "student_gflops_per_frame",
                                         "wall_seconds")},
        "summary": summary,
        "config": config.to_dict(),
    }


class progress_bar:
    """A tqdm line per run showing stride, keyframes and running mIoU; a final print when disabled."""

    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.bar: tqdm | None = None
        self.last: Progress | None = None
        self.start = 0.0

    def __enter__(self) -> Callable[[Progress], None]:
        self.start = time.perf_counter()
        if self.enabled:
            self.bar = tqdm(total=self.total, desc=self.label, unit="frame", file=sys.stderr, dynamic_ncols=True)
        return self._show

    def _show(self, p: Progress) -> None:
        self.last = p
        if self.bar is not None:
            self.bar.update(p.frames - self.bar.n)
            self.bar.set_postfix(stride=p.stride, keyframes=p.keyframes, mIoU=f"{p.miou:.3f}", refresh=False)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            miou = f", mIoU {self.last.miou:.3f}" if self.last else ""
            print(f"{self.label}: {self.total} frames in {time.perf_counter() - self.start:.1f}s{miou}",
                  file=sys.stderr)


Row = dict[str, Any]


def check_targets(runs: list[Row], scenarios: list[str]) -> list[dict[str, Any]]:
    """The three targets, each PASS, FAIL or not checked (a schedule it needs was not run)."""
    return [
        _verdict(f"adaptive mIoU >= {MIOU_TARGET:.2f} with cost-model speed-up >= {SPEEDUP_TARGET:g}x on every "
                 "scenario", _pairs(runs, scenarios, "adaptive"),
                 lambda a, _: _ge(a["miou"], MIOU_TARGET) and _ge(a["speedup_cost_model"], SPEEDUP_TARGET),
                 lambda a, _: f"mIoU {fmt(a['miou'])}, {fmt(a['speedup_cost_model'], 1, 'x')}"),
        _verdict("adaptive beats frozen on mIoU", _pairs(runs, scenarios, "frozen"),
                 lambda a, b: _gt(a["miou"], b["miou"]),
                 lambda a, b: f"{fmt(a['miou'])} vs {fmt(b['miou'])}"),
        _verdict("adaptive beats fixed-stride-8 on cost-model speed-up", _pairs(runs, scenarios, "fixed-stride-8"),
                 lambda a, b: _gt(a["speedup_cost_model"], b["speedup_cost_model"]),
                 lambda a, b: f"{fmt(a['speedup_cost_model'], 1, 'x')} vs {fmt(b['speedup_cost_model'], 1, 'x')}"),
    ]


def _pairs(runs: list[Row], scenarios: list[str], other: str) -> list[tuple[str, Row, Row]] | None:
    """Per scenario (name, adaptive row, ``other`` row); None when any of them was not run."""
    by_key = {(r["scenario"], r["schedule"]): r for r in runs}
    found = [(s, by_key.get((s, "adaptive")), by_key.get((s, other))) for s in scenarios]
    return None if any(a is None or b is None for _, a, b in found) else found


def _verdict(name: str, pairs: list[tuple[str, Row, Row]] | None, ok: Callable[[Row, Row], bool],
             detail: Callable[[Row, Row], str]) -> dict[str, Any]:
    if pairs is None:
        return {"target": name, "status": "not checked", "detail": "a schedule it needs was not run"}
    passed = all(ok(a, b) for _, a, b in pairs)
    return {"target": name, "status": "PASS" if passed else "FAIL",
            "detail": "; ".join(f"{s}: {detail(a, b)}" for s, a, b in pairs)}


def _ge(value: float | None, bound: float) -> bool:
    return value is not None and value >= bound


def _gt(value: float | None, other: float | None) -> bool:
    return value is not None and other is not None and value > other


def results_table(runs: list[dict[str, Any]]) -> str:
    headers = ["scenario", "schedule", "mIoU", "mIoU fg", "keyframe fraction", "updates", "speed-up (cost model)",
               "speed-up (measured)", "student GFLOPs/frame", "wall s"]
    rows = [[r["scenario"], r["schedule"], fmt(r["miou"]), fmt(r["miou_foreground"]), fmt(r["keyframe_fraction"]),
             str(r["updates"]), fmt(r["speedup_cost_model"], 1, "x"), fmt(r["speedup_measured"], 1, "x"),
             fmt(r["student_gflops_per_frame"], 2), fmt(r["wall_seconds"], 1)] for r in runs]
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    env = environment(args.device)
    order = [s for s in SCHEDULES if s in args.schedules]
    payload: dict[str, Any] = {"benchmark": "accuracy_vs_cost", "environment": env, "args": vars(args) | {
        "out": args.out.name}, "runs": []}
    print(f"{describe_environment(env)}; {args.width}x{args.height}, {args.frames} frames, seed {args.seed}, "
          f"oracle teacher; overrides {args.overrides or 'none'}", file=sys.stderr)
    for scenario in args.scenarios:
        for schedule in order:
            if schedule == "teacher-every-frame":
                payload["runs"].append(teacher_every_frame(scenario))
            else:
                payload["runs"].append(run_student(scenario, schedule, args))
            write_results(args.out, payload)
    payload["targets"] = check_targets(payload["runs"], args.scenarios)
    write_results(args.out, payload)
    print_report(payload, args)
    return 0


def print_report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    env = payload["environment"]
    print("# Accuracy vs cost of online distillation schedules\n")
    print(f"{describe_environment(env)}. Synthetic {args.width}x{args.height}, {args.frames} frames, seed "
          f"{args.seed}, oracle teacher, every frame scored; frozen after {args.freeze_after} keyframes; "
          f"overrides: {', '.join(args.overrides) or 'none'}.\n")
    print(results_table(payload["runs"]))
    print("\n## Targets\n")
    for t in payload["targets"]:
        print(f"- {t['status']}: {t['target']} ({t['detail']})")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
