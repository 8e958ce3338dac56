"""Warm starts on cameras never seen in pretraining: random init vs a pretrained student vs a fleet warm start.

1. History: earlier cameras (``--history-seeds``, every scenario of ``--scenarios``) are distilled into a run
   root with the oracle teacher; the run keeps its keyframes' teacher labels.
2. Pretrain: ``odist pretrain`` on that run root, i.e. on the labels the history already paid for
   (no new teacher work).
3. New cameras (``--seeds``, disjoint from the history's, the same scenario mix) are distilled four ways:
   ``random`` (fresh weights), ``pretrain`` (``--init`` the pretrained checkpoint) and ``fleet``
   (``--warm-start fleet``: the latest finished student of the camera's site, the scenario standing for
   the site; the new cameras go seed by seed, so later seeds start from earlier new cameras' students), and
   ``fleet-average`` (``--warm-start fleet-average``: the mean weights of the site's latest finished students).

Every frame is scored against the oracle (as ``--evaluate``; never in the speed-ups). Reported per arm:
mIoU over the first 100 frames, the frame of the first keyframe whose min-class IoU passes the threshold
(after its updates), whole-stream mIoU and cost-model speed-up, as the mean over cameras (± the standard
deviation of the per-seed means). Targets: first-100-frame mIoU at least 0.10 above random init; speed-up at
least random init's at equal or better whole-stream mIoU (within 0.005).

Run (about 10-15 minutes on 2 shared CPUs)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 nice -n 5 python bench/warm_start.py --jobs 2

Tiny check::

    python bench/warm_start.py --width 96 --height 64 --frames 12 --history-frames 24 --scenarios traffic \\
        --seeds 0 --epochs 1 --out /tmp/warm_start.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results

import odist
from odist.config import load_config
from odist.distill.metrics import ConfusionMeter, confusion
from odist.distill.pipeline import StreamOptions
from odist.fleet.warm_start import FleetWarmStart
from odist.models.teachers import build_teacher
from odist.pretrain import PretrainOptions, pretrain
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table
from odist.video.manifest import StreamSpec
from odist.video.synthetic import CAMERA_SCENARIOS, SyntheticSource

ARMS = ("random", "pretrain", "fleet", "fleet-average")
FIRST = 100
# How a warm-started student learns its first keyframes (distill.warm_start_*), each tried on the pretrain start.
VARIANTS = ("rung1:distill.warm_start_rung=1", "rung2:distill.warm_start_rung=2",
            "lr0.3:distill.warm_start_lr_scale=0.3", "lr3:distill.warm_start_lr_scale=3")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", default=list(CAMERA_SCENARIOS), help="the scenario (site) mix")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="new cameras' seeds (default 0 1 2)")
    p.add_argument("--history-seeds", nargs="+", type=int, default=[100, 101], help="earlier cameras' seeds")
    p.add_argument("--width", type=int, default=160, help="frame width (default 160)")
    p.add_argument("--height", type=int, default=90, help="frame height (default 90)")
    p.add_argument("--frames", type=int, default=150, help="frames per new camera (default 150)")
    p.add_argument("--history-frames", type=int, default=300, help="frames per earlier camera (default 300)")
    p.add_argument("--epochs", type=int, default=10, help="pretrain epochs (default 10)")
    p.add_argument("--lr", type=float, default=0.05, help="pretrain learning rate (default 0.05)")
    p.add_argument("--set", dest="overrides", action="append", default=["student.width=0.25"], metavar="KEY=VALUE",
                   help="config override for every run (default student.width=0.25; repeatable)")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                   help="warm-start learning settings tried on the pretrain start (default: rungs 1, 2; lr x0.3, x3)")
    p.add_argument("--jobs", type=int, default=1, help="streams distilled in parallel processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--work", type=Path, default=None, help="folder for the runs and checkpoint (default: a temp one)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "warm_start.json", help="JSON results path")
    return p.parse_args(argv)


def distill_one(run: str, scenario: str, seed: int, frames: int, init: str | None, arm: str,
                args: argparse.Namespace, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Distil one camera (scored on every frame) and measure it; ``extra`` are the arm's own overrides."""
    set_threads(args.threads)
    config = load_config(overrides=[*args.overrides, *extra, f"threads={args.threads}"], environ={})
    stream_id = f"{scenario}-{seed}"
    started = time.perf_counter()
    summary = odist.distill(f"synthetic:{scenario}", run, config, stream_id=stream_id, overrides=[
        "distill.evaluate=true", f"source.frames={frames}", f"source.width={args.width}",
        f"source.height={args.height}", f"source.seed={seed}", f"distill.init={json.dumps(init)}"])
    area = StreamArea(open_store(run), stream_id)
    records = read_stream_table(area).to_pylist()
    threshold = config.distill.accuracy_threshold
    passed = next((r["frame_index"] for r in records if r["keyframe"] and r["keyframe_accuracy"] > threshold), None)
    return {"arm": arm, "overrides": list(extra), "scenario": scenario, "seed": seed, "init": init, "frames": frames,
            "first_miou": first_frames_miou(area, scenario, seed, config, args),
            "first_pass_frame": passed, "miou": summary["miou"], "speedup_cost_model": summary["speedup_cost_model"],
            "keyframes": summary["keyframes"], "updates": summary["updates"],
            "first_updates": sum(r["updates"] for r in records if r["frame_index"] < FIRST),
            "checkpoint": summary["checkpoint"], "wall_seconds": time.perf_counter() - started}


def first_frames_miou(area: StreamArea, scenario: str, seed: int, config: Any, args: argparse.Namespace) -> float:
    """mIoU (accumulated over pixels, as the stream's own) of the committed masks of the first 100 frames."""
    masks = decode_masks(read_stream_table(area, "masks"))
    oracle = build_teacher("oracle", config.teacher, config.classes)
    meter = ConfusionMeter(len(config.classes))
    for frame in SyntheticSource(scenario, seed=seed, width=args.width, height=args.height, frames=FIRST):
        if frame.index in masks:
            labels = oracle.label([frame]).labels[0].classes
            meter.add(confusion(masks[frame.index], labels, len(config.classes)))
    return meter.miou()


def run_all(args: argparse.Namespace, work: Path, pool: ProcessPoolExecutor) -> tuple[list[dict], dict]:
    history = str(work / "history")
    jobs = [pool.submit(distill_one, history, s, seed, args.history_frames, None, "history", args)
            for seed in args.history_seeds for s in args.scenarios]
    earlier = [job.result() for job in jobs]
    print(f"history: {len(earlier)} cameras, {sum(r['keyframes'] for r in earlier)} keyframes kept", flush=True)

    checkpoint = str(work / "pretrained.pt")
    config = load_config(overrides=[*args.overrides, f"threads={args.threads}"], environ={})
    started = time.perf_counter()
    meta = pretrain([history], checkpoint, config, PretrainOptions(epochs=args.epochs, lr=args.lr,
                                                                   stream=StreamOptions()))
    meta = {k: meta[k] for k in ("frames", "teacher", "losses", "resolution", "weight_digest")}
    meta["seconds"] = time.perf_counter() - started
    print(f"pretrain: {meta['frames']} frames, loss {meta['losses'][0]:.3f} -> {meta['losses'][-1]:.3f}, "
          f"{meta['seconds']:.0f} s", flush=True)

    arms = [("random", None, ()), ("pretrain", checkpoint, ())]
    arms += [(f"pretrain {name}", checkpoint, tuple(sets.split(","))) for name, sets in map(_variant, args.variants)]
    jobs = [pool.submit(distill_one, str(work / arm.replace(" ", "-")), s, seed, args.frames, init, arm, args, extra)
            for arm, init, extra in arms for seed in args.seeds for s in args.scenarios]
    specs = [StreamSpec("", f"{s}-{seed}", group=s) for seed in args.history_seeds for s in args.scenarios]
    fleets = {"fleet": FleetWarmStart.from_store(open_store(history), specs),
              "fleet-average": FleetWarmStart.from_store(open_store(history), specs, average_config=config.to_dict())}
    runs: list[dict] = []
    for seed in args.seeds:  # seed by seed: later new cameras may start from earlier new cameras' students
        started = []
        for arm, fleet in fleets.items():
            for s in args.scenarios:
                spec = fleet.apply(StreamSpec(f"synthetic:{s}", f"{s}-{seed}", group=s))
                started.append((fleet, spec, pool.submit(distill_one, str(work / arm), s, seed, args.frames,
                                                         spec.init, arm, args)))
        for fleet, spec, job in started:
            result = job.result()
            fleet.finished_stream(spec, {"checkpoint": result["checkpoint"]})
            runs.append(result)
    runs += [job.result() for job in jobs]
    return runs, meta


def _variant(text: str) -> tuple[str, str]:
    name, sep, sets = text.partition(":")
    if not sep or not name or "=" not in sets:
        raise SystemExit(f"--variants {text!r}: give NAME:KEY=VALUE[,KEY=VALUE], e.g. rung1:distill.warm_start_rung=1")
    return name, sets


def aggregate(runs: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any]]:
    """Per arm: the mean over cameras and the standard deviation of the per-seed means."""
    rows = []
    for arm in dict.fromkeys([*ARMS, *(r["arm"] for r in runs)]):
        mine = [r for r in runs if r["arm"] == arm]
        row: dict[str, Any] = {"arm": arm, "cameras": len(mine)}
        for key in ("first_miou", "first_pass_frame", "miou", "speedup_cost_model", "keyframes", "first_updates"):
            values = [np.nan if r[key] is None else float(r[key]) for r in mine]
            per_seed = [_mean([v for r, v in zip(mine, values, strict=True) if r["seed"] == s]) for s in seeds]
            row[key] = _mean(values)
            row[key + "_std"] = float(np.nanstd(per_seed)) if not np.isnan(per_seed).all() else np.nan
        row["never_passed"] = sum(r["first_pass_frame"] is None for r in mine)
        rows.append(row)
    return rows


def _mean(values: list[float]) -> float:
    """The mean of the values that are not NaN (a camera that never passed has none); NaN when none is."""
    kept = [v for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else np.nan


def check_targets(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    by = {r["arm"]: r for r in rows}
    base = by["random"]
    out = []
    for arm in [a for a in by if a != "random"]:
        r = by[arm]
        gain = r["first_miou"] - base["first_miou"]
        out.append({"target": f"{arm}: first-{FIRST}-frame mIoU >= random + 0.10",
                    "status": "PASS" if gain >= 0.10 else "FAIL",
                    "detail": f"{fmt(r['first_miou'])} vs {fmt(base['first_miou'])} (+{gain:.3f})"})
        ok = r["speedup_cost_model"] >= base["speedup_cost_model"] and r["miou"] >= base["miou"] - 0.005
        out.append({"target": f"{arm}: speed-up >= random's at equal or better mIoU",
                    "status": "PASS" if ok else "FAIL",
                    "detail": f"{fmt(r['speedup_cost_model'], 1, 'x')} at mIoU {fmt(r['miou'])} vs "
                              f"{fmt(base['speedup_cost_model'], 1, 'x')} at {fmt(base['miou'])}"})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    def pm(row: dict[str, Any], key: str, digits: int = 3, suffix: str = "") -> str:
        return f"{fmt(row[key], digits, suffix)} ± {fmt(row[key + '_std'], digits)}"

    headers = ["start", "cameras", f"mIoU first {FIRST}", "first passing keyframe (frame)", "mIoU",
               "speed-up (cost model)", "keyframes", f"updates first {FIRST}"]
    body = [[r["arm"], str(r["cameras"]), pm(r, "first_miou"),
             pm(r, "first_pass_frame", 1) + (f" ({r['never_passed']} never)" if r["never_passed"] else ""),
             pm(r, "miou"), pm(r, "speedup_cost_model", 1, "x"), f"{r['keyframes']:.1f}", f"{r['first_updates']:.1f}"]
            for r in rows]
    return markdown_table(headers, body)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warm_start-") as scratch, \
            ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        work = args.work or Path(scratch)
        runs, meta = run_all(args, work, pool)
    rows = aggregate(runs, args.seeds)
    targets = check_targets(rows)
    print(describe_environment(environment()))
    print(f"{args.width}x{args.height}, new cameras {args.frames} frames, seeds {args.seeds} x {args.scenarios}; "
          f"pretrain on {meta['frames']} kept keyframe labels of {len(args.history_seeds) * len(args.scenarios)} "
          f"earlier cameras ({meta['teacher']['frames']} new teacher labels)")
    print(table(rows))
    print("paper (JITNet, LVS at 1280x720, a COCO-pretrained student): 7-17x lower inference cost than the teacher")
    for t in targets:
        print(f"{t['status']}: {t['target']} — {t['detail']}")
    payload = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "environment": environment(), "pretrain": meta, "rows": rows, "targets": targets, "runs": runs,
               "wall_seconds": time.perf_counter() - started}
    write_results(args.out, payload)
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
