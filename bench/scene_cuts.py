"""How far apart scene signatures lie within a shot and across a cut: what ``distill.cut_threshold`` splits.

For each synthetic scenario and seed, every frame's scene signature (``odist.distill.scene``) is compared
with the previous frame's and with the frame ``--lag`` frames back within the same shot (a keyframe that
far back, under the default ladder's longer strides, with lighting drift and moving objects between), and
at every true cut with the frame before it. Reported: the largest within-shot distances (max and 99th
percentile), the smallest distance at a cut, and how many cuts a threshold would miss and how many
within-shot pairs it would call a cut. The same for the jump rule (``distill.cut_rule=jump``): the jump
between consecutive frames (``jump_distance``, camera motion taken out) within a shot (max) and at a cut
(min), and the cuts it misses and the false cuts it calls, with the policy's own motion window and
contrast. ``NAME-pan`` scenarios are ``NAME`` seen by a panning camera (``bench/_pan.py``).
Results: ``bench/results/scene_cuts.json``.

Run::

    python bench/scene_cuts.py

Tiny check::

    python bench/scene_cuts.py --width 96 --height 64 --frames 60 --seeds 0 --out /tmp/scene_cuts.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS_DIR, fmt, markdown_table, write_results
from _pan import SUFFIX, PannedSource

from odist.config import DistillConfig, load_config
from odist.distill.policy import KeyframePolicy
from odist.distill.scene import jump_distance, scene_distance, scene_signature
from odist.video.synthetic import SCENARIOS, SyntheticSource

SCENE_NAMES = [*SCENARIOS, *(name + SUFFIX for name in SCENARIOS)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", choices=SCENE_NAMES, default=list(SCENARIOS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--frames", type=int, default=900)
    p.add_argument("--lag", type=int, default=64, help="frames back for the within-shot comparison (default 64)")
    p.add_argument("--threshold", type=float, default=DistillConfig.cut_threshold,
                   help="the cut threshold to count misses and false cuts at (default: the config's)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "scene_cuts.json")
    return p.parse_args(argv)


def measure(scenario: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    if scenario.endswith(SUFFIX):
        source = PannedSource(scenario[:-len(SUFFIX)], seed=seed, width=args.width, height=args.height,
                              frames=args.frames)
        views = [source.wide.viewpoint_at(i) for i in range(len(source))]
    else:
        source = SyntheticSource(scenario, seed=seed, width=args.width, height=args.height, frames=args.frames)
        views = [source.viewpoint_at(i) for i in range(len(source))]
    frames = list(source)
    cuts = set(source.cuts)
    shot = np.cumsum([i in cuts for i in range(len(source))])  # shot number of every frame
    signatures = [scene_signature(f.image) for f in frames]
    jumps = [jump_distance(signatures[i], signatures[i - 1]) for i in range(1, len(source))]
    policy = KeyframePolicy.from_config(load_config(environ={}, overrides=["distill.cut_rule=jump"]).distill)
    called = set()
    for f in frames:
        if policy.cut(f) is not None:
            called.add(f.index)
    within, across = [], []
    for i in range(1, len(source)):
        (across if i in cuts else within).append(scene_distance(signatures[i], signatures[i - 1]))
    lagged = [scene_distance(signatures[i], signatures[i - args.lag]) for i in range(args.lag, len(source))
              if shot[i] == shot[i - args.lag] and views[i] == views[i - args.lag]]
    inside = within + lagged
    return {
        "scenario": scenario, "seed": seed, "cuts": len(cuts),
        "within_max": max(within), "lagged_max": max(lagged) if lagged else None,
        "within_p99": float(np.percentile(inside, 99)),
        "cut_min": min(across) if across else None,
        "missed_cuts": sum(d <= args.threshold for d in across),
        "false_cuts": sum(d > args.threshold for d in inside), "pairs": len(inside),
        "jump_within_max": max(j for i, j in enumerate(jumps, start=1) if i not in cuts),
        "jump_cut_min": min((j for i, j in enumerate(jumps, start=1) if i in cuts), default=None),
        "jump_missed_cuts": len(cuts - called), "jump_false_cuts": len(called - cuts),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [measure(s, seed, args) for s in args.scenarios for seed in args.seeds]
    payload = {"benchmark": "scene_cuts", "args": vars(args) | {"out": args.out.name}, "rows": rows}
    write_results(args.out, payload)
    print(f"# Scene-signature distances ({args.width}x{args.height}, {args.frames} frames, lag {args.lag}, "
          f"threshold {args.threshold:g})\n")
    headers = ["scenario", "seed", "cuts", "within shot, next frame (max)", f"within shot, {args.lag} back (max)",
               "within shot p99", "at a cut (min)", "cuts missed", "false cuts / pairs",
               "jump within shot (max)", "jump at a cut (min)", "jump rule: missed / false cuts"]
    print(markdown_table(headers, [[r["scenario"], str(r["seed"]), str(r["cuts"]), fmt(r["within_max"]),
                                    fmt(r["lagged_max"]), fmt(r["within_p99"]), fmt(r["cut_min"]),
                                    str(r["missed_cuts"]), f"{r['false_cuts']} / {r['pairs']}",
                                    fmt(r["jump_within_max"]), fmt(r["jump_cut_min"]),
                                    f"{r['jump_missed_cuts']} / {r['jump_false_cuts']}"] for r in rows]))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
