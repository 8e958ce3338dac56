"""Student sizes compared on the synthetic scenarios, over several seeds: the accuracy-cost frontier.

Each run distils one synthetic stream (oracle teacher, every frame scored; the scoring never enters the
speed-ups) with one student: JITNet at width 0.5, 0.75 or 1.0, with the head's fine skips on or off, under the
shipped keyframe policy. ``x1.0`` (width 1.0, fine skips) is the baseline, the default student.

Reported per (scenario, student): mIoU, foreground mIoU, keyframes, updates, the cost-model speed-up (the
paper's fixed per-frame costs: it moves with keyframes and updates, not with the student's size) and the
stream's FLOPs speed-up; per student, its GFLOP per frame and FLOP ratio to Mask R-CNN R50-FPN at 1280x720,
and its mIoU and speed-ups over all scenarios (means of the scenario means) against the baseline's.
Results: ``bench/results/student_size.json`` (rewritten after every run).

Target checked: a student with a FLOP ratio >= 20x at 720p whose mIoU is within 0.01 of the baseline's
(over all scenarios, the mean of the scenario means).

Run (full size, about 70 minutes on 2 CPUs)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/student_size.py --jobs 2

Tiny check::

    python bench/student_size.py --width 96 --height 64 --frames 24 --scenarios edited --seeds 0 \\
        --students x0.5 x1.0 --jobs 1 --out /tmp/student_size.json
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results
from keyframe_policy import OWN_LENGTH, aggregate, distil_synthetic, earlier_runs, sweep

from odist.config import load_config
from odist.models.flops import count_gflops
from odist.models.jitnet import jitnet
from odist.video.synthetic import SCENARIOS

STUDENTS: dict[str, list[str]] = {
    f"x{width}{'' if skips else '-noskips'}": [f"student.width={width}", f"student.fine_skips={str(skips).lower()}"]
    for width in (0.5, 0.75, 1.0) for skips in (True, False)
}
BASELINE = "x1.0"
# Mask R-CNN R50-FPN v1 at 1280x720 with 100 detections, as bench/frame_cost.py counts it.
MASK_RCNN_GFLOPS_720P = 522.0
TARGET_RATIO = 20.0
TARGET_MIOU_GAP = 0.01


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    p.add_argument("--students", nargs="+", choices=list(STUDENTS), default=list(STUDENTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="scene (and student) seeds")
    p.add_argument("--width", type=int, default=320, help="frame width (default 320)")
    p.add_argument("--height", type=int, default=180, help="frame height (default 180)")
    p.add_argument("--frames", type=int, default=900,
                   help="frames per stream (default 900; edited runs at its own length, 450, unless given)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "student_size.json", help="JSON results path")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs already in --out (same size and frames) and make only the missing ones")
    return p.parse_args(argv)


def run_one(scenario: str, student: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Distil one stream with one student and return its headline numbers."""
    overrides = [*STUDENTS[student], f"distill.seed={seed}"]
    frames = args.frames if args.frames != 900 else OWN_LENGTH.get(scenario, args.frames)
    return {"scenario": scenario, "student": student, "seed": seed, "frames": frames, "overrides": overrides,
            **distil_synthetic(scenario, seed, overrides, args.width, args.height, frames, args.threads)}


def student_flops(student: str) -> dict[str, float]:
    """GFLOP per frame of one student at 1280x720, and Mask R-CNN R50-FPN's over it."""
    s = load_config(overrides=STUDENTS[student], environ={}).student
    gflops = count_gflops(jitnet(len(load_config(environ={}).classes), s.width, s.units, s.batch_stats_at_inference,
                                 s.fine_skips), 720, 1280)
    return {"gflops_720p": gflops, "flop_ratio_720p": MASK_RCNN_GFLOPS_720P / gflops}


def frontier(rows: list[dict[str, Any]], students: list[str]) -> list[dict[str, Any]]:
    """Per student: its FLOPs at 720p and its mIoU over all scenarios (the mean of the scenario means)."""
    out = []
    for student in students:
        mine = [r for r in rows if r["student"] == student]
        if not mine:
            continue
        out.append({"student": student, **student_flops(student), "scenarios": len(mine),
                    "miou": float(np.mean([r["miou"] for r in mine])),
                    "miou_by_scenario": {r["scenario"]: r["miou"] for r in mine},
                    "speedup_cost_model": float(np.mean([r["speedup_cost_model"] for r in mine])),
                    "speedup_flops": float(np.mean([r["speedup_flops"] for r in mine]))})
    base = next((f for f in out if f["student"] == BASELINE), None)
    for f in out:
        f["miou_gap"] = f["miou"] - base["miou"] if base else math.nan
        f["meets_target"] = bool(base) and f["flop_ratio_720p"] >= TARGET_RATIO \
            and f["miou_gap"] >= -TARGET_MIOU_GAP
    return out


def shipped_student() -> str | None:
    """The named student equal to the config's default student, if any."""
    default = load_config(environ={}).student
    return next((name for name, o in STUDENTS.items() if load_config(overrides=o, environ={}).student == default),
                None)


def scenario_table(rows: list[dict[str, Any]]) -> str:
    def pm(row: dict[str, Any], key: str, digits: int = 3, suffix: str = "") -> str:
        return f"{fmt(row[key], digits, suffix)} ± {fmt(row[key + '_std'], digits)}"

    headers = ["scenario", "student", "seeds", "mIoU", "mIoU fg", "keyframes", "updates", "speed-up (cost model)",
               "speed-up (FLOPs)"]
    body = [[r["scenario"], r["student"], ",".join(map(str, r["seeds"])), pm(r, "miou"), pm(r, "miou_foreground"),
             f"{r['keyframes']:.1f}", f"{r['updates']:.0f}", pm(r, "speedup_cost_model", 1, "x"),
             pm(r, "speedup_flops", 1, "x")] for r in rows]
    return markdown_table(headers, body)


def frontier_table(students: list[dict[str, Any]], scenarios: list[str]) -> str:
    headers = ["student", "GFLOP/frame at 720p", "FLOP ratio at 720p", *scenarios, "mIoU (all)",
               f"vs {BASELINE}", "speed-up (cost model)", "speed-up (FLOPs)", "target"]
    body = [[f["student"], fmt(f["gflops_720p"], 1), fmt(f["flop_ratio_720p"], 1, "x"),
             *[fmt(f["miou_by_scenario"].get(s)) for s in scenarios], fmt(f["miou"]), f"{f['miou_gap']:+.3f}",
             fmt(f["speedup_cost_model"], 1, "x"), fmt(f["speedup_flops"], 1, "x"),
             "met" if f["meets_target"] else "missed"] for f in students]
    return markdown_table(headers, body)


def _earlier_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs of an earlier ``--out`` whose students are still defined the same way."""
    return [r for r in earlier_runs(args) if r["overrides"][:-1] == STUDENTS.get(r["student"])]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "student_size", "environment": env,
                               "args": vars(args) | {"out": args.out.name}, "students": STUDENTS, "runs": []}
    if args.resume and args.out.exists():
        payload["runs"] = _earlier_runs(args)
    done = {(r["scenario"], r["student"], r["seed"]) for r in payload["runs"]}
    planned = [(s, st, seed) for st in args.students for s in args.scenarios for seed in args.seeds]
    jobs = [job for job in planned if job not in done]
    print(f"{describe_environment(env)}; {args.width}x{args.height}, {args.frames} frames, {len(jobs)} runs on "
          f"{args.jobs} processes x {args.threads} threads", file=sys.stderr)
    sweep(run_one, jobs, args, payload, by="student")
    payload["summary"] = aggregate(payload["runs"], by="student")
    payload["frontier"] = frontier(payload["summary"], list(STUDENTS))
    payload["shipped_student"] = shipped_student()
    write_results(args.out, payload)
    print("# Student sizes\n")
    print(f"{describe_environment(env)}. Synthetic {args.width}x{args.height}, {args.frames} frames, seeds "
          f"{args.seeds}, oracle teacher, shipped keyframe policy; mean ± standard deviation over seeds.\n")
    print(scenario_table(payload["summary"]))
    print(f"\n## Frontier (Mask R-CNN R50-FPN: {MASK_RCNN_GFLOPS_720P:.0f} GFLOP per 720p frame)\n")
    print(frontier_table(payload["frontier"], [s for s in SCENARIOS if s in args.scenarios]))
    print(f"\nTarget: FLOP ratio >= {TARGET_RATIO:.0f}x at 720p with mIoU within {TARGET_MIOU_GAP} of {BASELINE}. "
          f"Shipped student: {payload['shipped_student'] or 'none of these'}.")
    print(f"\nJSON: {args.out}")
    return 0 if not any(math.isnan(r["miou"]) for r in payload["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
