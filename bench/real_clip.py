"""Keyframe policies on a real edited clip with replayed person labels: person IoU, keyframes by trigger, cost.

The clip (default: the shared Megamind trailer, 270 frames, real cuts at 98, 154 and 200 and a fade-in at 1)
is decoded at ``--width`` (aspect kept); its label PNGs (class ids at the clip's full size) are resized to
the decoded size with nearest-neighbour into a temporary folder and replayed as the teacher. Every frame is
scored against its labels (as ``odist distill --evaluate``: the replay teacher labels every frame; that
cost never enters the speed-ups). Per (policy, student seed): person IoU, mIoU, the cost-model speed-up and
the keyframes with their frames and triggers; per policy the mean over seeds. Policies are those of
``bench/keyframe_policy.py``. Results: ``bench/results/real_clip.json``.

Run::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/real_clip.py --policies all default

Tiny check::

    python bench/real_clip.py --width 96 --max-frames 30 --seeds 0 --policies default --out /tmp/real_clip.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results
from keyframe_policy import POLICIES
from PIL import Image

import odist
from odist.distill.policy import TRIGGERS
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import read_stream_table
from odist.video.open import open_source

FOOTAGE = Path("/work/shared/footage/megamind")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=FOOTAGE / "Megamind.avi")
    p.add_argument("--labels", type=Path, default=FOOTAGE / "labels", help="full-size label PNGs, one per frame")
    p.add_argument("--width", type=int, default=360, help="decoded width (default 360, half size)")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--policies", nargs="+", choices=list(POLICIES), default=["all", "default"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="student seeds (distill.seed)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run, applied after the policy's own (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "real_clip.json")
    return p.parse_args(argv)


def resized_labels(labels: Path, size: tuple[int, int], folder: Path) -> Path:
    """``labels``' PNGs resized (nearest) to ``size`` (width, height) in ``folder``."""
    for path in sorted(labels.glob("*.png")):
        Image.open(path).resize(size, Image.Resampling.NEAREST).save(folder / path.name)
    return folder


def run_one(args: argparse.Namespace, labels: Path, policy: str, seed: int, work: Path) -> dict[str, Any]:
    overrides = [*POLICIES[policy], *args.overrides, f"distill.seed={seed}", f"threads={args.threads}"]
    out = work / f"{policy}-{seed}"
    summary = odist.distill(str(args.video), str(out), overwrite=True, overrides=[
        *overrides, f"teacher.name=replay:{labels}", "distill.evaluate=true", f"source.width={json.dumps(args.width)}",
        f"distill.max_frames={json.dumps(args.max_frames)}"])
    stream = StreamArea(open_store(str(out)), args.video.stem)
    records = read_stream_table(stream).to_pylist()
    return {"policy": policy, "seed": seed, "overrides": overrides,
            "person_iou": summary["class_iou"]["person"], "miou": summary["miou"],
            "speedup_cost_model": summary["speedup_cost_model"], "speedup_flops": summary["speedup_flops"],
            "keyframes": summary["keyframes"], "keyframes_by_trigger": summary["keyframes_by_trigger"],
            "updates": summary["updates"],
            "keyframe_frames": [[r["frame_index"], r["trigger"], r["stride"]] for r in records if r["keyframe"]]}


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for policy in dict.fromkeys(r["policy"] for r in runs):
        group = [r for r in runs if r["policy"] == policy]
        row: dict[str, Any] = {"policy": policy, "seeds": [r["seed"] for r in group]}
        for key in ("person_iou", "miou", "speedup_cost_model", "keyframes"):
            values = np.asarray([r[key] for r in group], np.float64)
            row[key], row[key + "_std"] = float(values.mean()), float(values.std())
        for t in TRIGGERS:
            row[f"{t}_keyframes"] = float(np.mean([r["keyframes_by_trigger"].get(t, 0) for r in group]))
        rows.append(row)
    return rows


def by_trigger(row: dict[str, Any]) -> str:
    return "/".join(f"{row[t + '_keyframes']:.1f}" for t in TRIGGERS)


def table(rows: list[dict[str, Any]]) -> str:
    headers = ["policy", "seeds", "person IoU", "mIoU", "speed-up (cost model)",
               f"keyframes ({'/'.join(TRIGGERS)})"]
    body = [[r["policy"], ",".join(map(str, r["seeds"])),
             f"{fmt(r['person_iou'])} ± {fmt(r['person_iou_std'])}", f"{fmt(r['miou'])} ± {fmt(r['miou_std'])}",
             f"{fmt(r['speedup_cost_model'], 1, 'x')} ± {fmt(r['speedup_cost_model_std'], 1)}",
             f"{r['keyframes']:.1f} ({by_trigger(r)})"] for r in rows]
    return markdown_table(headers, body)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    env = environment("cpu")
    first = next(iter(open_source(str(args.video), width=args.width)))
    payload: dict[str, Any] = {"benchmark": "real_clip", "environment": env,
                               "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "frame_size": [first.width, first.height], "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "labels").mkdir()
        labels = resized_labels(args.labels, (first.width, first.height), work / "labels")
        for policy in args.policies:
            for seed in args.seeds:
                run = run_one(args, labels, policy, seed, work)
                payload["runs"].append(run)
                print(f"{policy} seed {seed}: person IoU {run['person_iou']:.3f}, {run['speedup_cost_model']:.1f}x, "
                      f"{run['keyframes_by_trigger']}", file=sys.stderr)
                payload["summary"] = aggregate(payload["runs"])
                write_results(args.out, payload)
    print(f"# Keyframe policies on {args.video.name}\n")
    print(f"{describe_environment(env)}. {first.width}x{first.height}, replayed labels, every frame scored; "
          f"mean ± standard deviation over student seeds {args.seeds}.\n")
    print(table(payload["summary"]))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
