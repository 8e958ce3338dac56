"""The student's normalisation, measured then chosen: accuracy over whole streams and milliseconds per frame.

Normalisations (``--variants``):

* ``frame``: each frame normalised with its own statistics at inference (``student.batch_stats_at_inference``,
  the choice before this measurement): a reduction pass per BatchNorm on every frame, never foldable;
* ``running``: running statistics (momentum 0.1, torch's default), folded into the convolutions at inference;
* ``keyframe``: running statistics with momentum 1.0: inference uses the statistics of the last training
  forward (the last keyframe's, under the weights its updates left), folded likewise;
* ``group`` (timing only, its accuracy is not measured): GroupNorm (8 groups) in place of every BatchNorm.
  Like ``frame`` it computes statistics per frame and folds nowhere.

Each is run in fp32 and under bf16 autocast (``--precisions``; ``performance.amp=bf16``, where the CPU runs it).

Accuracy: every synthetic scenario (oracle teacher, every frame scored, ``--seeds``) and the shared real clip
(``bench/real_clip.py``'s replayed person labels, student seeds ``--seeds``), at small frames so the matrix fits
a loaded machine. Speed, in the same process, variants interleaved round by round: inference and one update
(SGD on a rendered frame's truth, batch 1) at ``--sizes``: the calling thread's CPU time (median of
``--repeats``; with one torch thread all the work runs there, and other processes on a loaded machine do not
inflate it) and the fastest wall time. ``--accuracy-from`` re-times against an earlier run's accuracy.

The rule: the default is the fastest variant whose mIoU is within ``--tolerance`` (0.005) of ``frame`` fp32's on
every scenario and on the real clip's person IoU. Results: ``bench/results/normalisation.json``.

Run::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/normalisation.py --jobs 2

Tiny check::

    python bench/normalisation.py --width 64 --height 48 --frames 12 --clip-width 64 --clip-frames 12 \\
        --seeds 0 --sizes 96x64 --repeats 1 --out /tmp/normalisation.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results
from keyframe_policy import distil_synthetic
from real_clip import FOOTAGE, resized_labels
from student_cpu import frame_and_input
from torch import nn

import odist
from odist.config import load_config
from odist.distill.loss import distillation_loss, foreground_weights
from odist.models.acceleration import resolve_amp
from odist.models.flops import count_gflops
from odist.models.fold import fold_batchnorm
from odist.models.jitnet import jitnet
from odist.video.open import open_source
from odist.video.synthetic import SCENARIOS

VARIANTS: dict[str, list[str]] = {
    "frame": ["student.batch_stats_at_inference=true"],
    "running": ["student.batch_stats_at_inference=false", "student.running_stats_momentum=0.1"],
    "keyframe": ["student.batch_stats_at_inference=false", "student.running_stats_momentum=1.0"],
}
TIMED = (*VARIANTS, "group")
PRECISIONS: dict[str, list[str]] = {"fp32": ["performance.amp=off"], "bf16": ["performance.amp=bf16"]}
BASELINE = ("frame", "fp32")
GROUPS = 8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=list(PRECISIONS))
    p.add_argument("--scenarios", nargs="*", choices=list(SCENARIOS), default=list(SCENARIOS),
                   help="synthetic scenarios (none: the real clip only)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--width", type=int, default=160, help="synthetic frame width (default 160)")
    p.add_argument("--height", type=int, default=90, help="synthetic frame height (default 90)")
    p.add_argument("--frames", type=int, default=300, help="frames per synthetic stream (default 300)")
    p.add_argument("--clip", type=Path, default=FOOTAGE / "Megamind.avi", help="real clip (skipped if absent)")
    p.add_argument("--clip-labels", type=Path, default=FOOTAGE / "labels")
    p.add_argument("--clip-width", type=int, default=160, help="decoded width of the real clip (default 160)")
    p.add_argument("--clip-frames", type=int, default=None, help="frames of the real clip (default: all)")
    p.add_argument("--sizes", nargs="+", default=["640x360", "1280x720"], help="timed frame sizes WxH")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per size (median reported)")
    p.add_argument("--tolerance", type=float, default=0.005, help="mIoU a default may lose on any scenario")
    p.add_argument("--jobs", type=int, default=1, help="accuracy runs in parallel processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--accuracy-from", type=Path, nargs="+", default=None,
                   help="take the accuracy runs from earlier results JSONs (all their runs) instead of making them")
    p.add_argument("--timing-from", type=Path, default=None,
                   help="take the timing from an earlier results JSON instead of measuring it")
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "normalisation.json")
    return p.parse_args(argv)


# -- accuracy ----------------------------------------------------------------------------------------


def synthetic_run(scenario: str, variant: str, precision: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    overrides = [*VARIANTS[variant], *PRECISIONS[precision], f"distill.seed={seed}"]
    s = distil_synthetic(scenario, seed, overrides, args.width, args.height, args.frames, args.threads)
    return {"input": scenario, "variant": variant, "precision": precision, "seed": seed, "miou": s["miou"],
            "speedup_cost_model": s["speedup_cost_model"], "keyframes": s["keyframes"], "updates": s["updates"],
            "wall_seconds": s["wall_seconds"]}


def clip_run(scenario: str, variant: str, precision: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    set_threads(args.threads)
    overrides = [*VARIANTS[variant], *PRECISIONS[precision], f"distill.seed={seed}", f"threads={args.threads}"]
    with tempfile.TemporaryDirectory(prefix="normalisation-") as tmp:
        work = Path(tmp)
        first = next(iter(open_source(str(args.clip), width=args.clip_width)))
        (work / "labels").mkdir()
        labels = resized_labels(args.clip_labels, (first.width, first.height), work / "labels")
        start = time.perf_counter()
        s = odist.distill(str(args.clip), str(work / "run"), overwrite=True, overrides=[
            *overrides, f"teacher.name=replay:{labels}", "distill.evaluate=true", f"source.width={args.clip_width}",
            f"distill.max_frames={json.dumps(args.clip_frames)}"])
    return {"input": scenario, "variant": variant, "precision": precision, "seed": seed,
            "miou": s["class_iou"]["person"], "speedup_cost_model": s["speedup_cost_model"],
            "keyframes": s["keyframes"], "updates": s["updates"], "wall_seconds": time.perf_counter() - start}


def accuracy(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    jobs = [(synthetic_run, s, v, p, seed) for s in args.scenarios for v in args.variants
            for p in args.precisions for seed in args.seeds]
    if args.clip.exists() and args.clip_labels.is_dir():
        jobs += [(clip_run, "real clip (person IoU)", v, p, seed) for v in args.variants for p in args.precisions
                 for seed in args.seeds]
    else:
        print(f"{args.clip} or its labels are missing: the real clip is skipped", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, s, v, p, seed, args) for fn, s, v, p, seed in jobs]
        for n, future in enumerate(futures, start=1):
            run = future.result()
            payload["runs"].append(run)
            print(f"[{n}/{len(jobs)}] {run['input']} {run['variant']} {run['precision']} seed {run['seed']}: "
                  f"{run['miou']:.3f}, {run['wall_seconds']:.0f}s", file=sys.stderr)
            payload["accuracy"] = aggregate(payload["runs"])
            write_results(args.out, payload)


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["input"], r["variant"], r["precision"]), []).append(r)
    rows = []
    for (name, variant, precision), group in groups.items():
        row: dict[str, Any] = {"input": name, "variant": variant, "precision": precision,
                               "seeds": sorted(r["seed"] for r in group)}
        for key in ("miou", "speedup_cost_model", "keyframes", "updates"):
            values = np.asarray([r[key] for r in group], np.float64)
            row[key], row[key + "_std"] = float(values.mean()), float(values.std())
        rows.append(row)
    return rows


# -- speed --------------------------------------------------------------------------------------------


def group_normed(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with GroupNorm (``GROUPS`` groups) in place of every BatchNorm."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.GroupNorm(GROUPS, child.num_features))
    return model


def models(num_classes: int) -> dict[str, nn.Module]:
    """Each timed normalisation's student (the shipped width, units and head), trained-mode copies."""
    s = load_config(environ={}).student
    torch.manual_seed(0)
    frame = jitnet(num_classes, s.width, s.units, True, s.fine_skips)
    running = jitnet(num_classes, s.width, s.units, False, s.fine_skips)
    running.load_state_dict(frame.state_dict(), strict=False)
    return {"frame": frame, "running": running, "keyframe": running, "group": group_normed(frame)}


def timing(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    config = load_config(environ={})
    d = config.distill
    bf16_ok = resolve_amp("bf16", torch.device("cpu")) is not None
    precisions = [p for p in args.precisions if p == "fp32" or bf16_ok]
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        frame, image = frame_and_input(width, height)
        image = image.contiguous(memory_format=torch.channels_last)
        target = torch.from_numpy(frame.truth.astype(np.int64)).unsqueeze(0)
        weights = foreground_weights(frame.truth_boxes, height, width, weight=d.foreground_weight,
                                     dilation=d.box_dilation, device=torch.device("cpu")).unsqueeze(0)
        nets = {k: m.to(memory_format=torch.channels_last) for k, m in models(len(config.classes)).items()}
        # The running-statistics students after a few updates, so their statistics are a frame's.
        steps: dict[tuple[str, str, str], Callable[[], object]] = {}
        for precision in precisions:
            amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" \
                else contextlib.nullcontext
            for name in ("frame", "running", "group"):
                steps[(name, precision, "update")] = update_step(copy.deepcopy(nets[name]), image, target, weights,
                                                                 d, amp)
            steps[("frame", precision, "inference")] = inference_step(nets["frame"].eval(), image, amp)
            steps[("running", precision, "inference (unfolded)")] = inference_step(nets["running"].eval(), image, amp)
            steps[("running", precision, "inference")] = inference_step(
                fold_batchnorm(nets["running"]).to(memory_format=torch.channels_last), image, amp)
            steps[("group", precision, "inference")] = inference_step(nets["group"].eval(), image, amp)
        cpu: dict[tuple[str, str, str], list[float]] = {k: [] for k in steps}
        wall: dict[tuple[str, str, str], list[float]] = {k: [] for k in steps}
        for step in steps.values():  # warm-up
            step()
        for _ in range(args.repeats):
            for key, step in steps.items():
                start, start_cpu = time.perf_counter(), time.thread_time()
                step()
                cpu[key].append((time.thread_time() - start_cpu) * 1000.0)
                wall[key].append((time.perf_counter() - start) * 1000.0)
        gflops = count_gflops(nets["frame"], height, width)
        for (name, precision, what), values in cpu.items():
            walls = wall[(name, precision, what)]
            payload["timing"].append({"size": size, "variant": name, "precision": precision, "what": what,
                                      "ms": statistics.median(values), "cpu_ms_all": values,
                                      "wall_ms_min": min(walls), "wall_ms_all": walls, "gflops": gflops})
            if name == "running":  # keyframe differs from running in its momentum only
                payload["timing"].append({**payload["timing"][-1], "variant": "keyframe"})
        print(f"timed {size}", file=sys.stderr)
        write_results(args.out, payload)


def inference_step(model: nn.Module, image: torch.Tensor, amp: Callable[[], Any]) -> Callable[[], object]:
    def step() -> object:
        with torch.inference_mode(), amp():
            return model(image).float().max(1).indices
    return step


def update_step(model: nn.Module, image: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, d: Any,
                amp: Callable[[], Any]) -> Callable[[], object]:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=d.lr, momentum=d.momentum, weight_decay=d.weight_decay)

    def step() -> object:
        with amp():
            logits = model(image)
        loss = distillation_loss(logits.float(), target, weights, d.iou_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss
    return step


# -- the choice and the tables -------------------------------------------------------------------------


def choose(payload: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """The fastest (variant, precision) within ``tolerance`` of the baseline's mIoU on every input.

    A loss is the mean over the seeds both ran; a variant qualifies only with every input at every seed the
    baseline ran."""
    miou = {(r["input"], r["variant"], r["precision"], r["seed"]): r["miou"] for r in payload.get("runs", [])}
    inputs = sorted({key[0] for key in miou})
    ms = {(t["variant"], t["precision"]): t["ms"] for t in payload.get("timing", [])
          if t["what"] == "inference" and t["size"] == "640x360"}
    verdicts = []
    for variant, precision in dict.fromkeys((key[1], key[2]) for key in miou):
        losses, complete = {}, True
        for name in inputs:
            base = {key[3] for key in miou if key[:3] == (name, *BASELINE)}
            seeds = sorted(seed for seed in base if (name, variant, precision, seed) in miou)
            complete &= bool(base) and len(seeds) == len(base)
            if seeds:
                losses[name] = float(np.mean([miou[(name, *BASELINE, seed)] - miou[(name, variant, precision, seed)]
                                              for seed in seeds]))
        ok = complete and all(loss <= tolerance for loss in losses.values())
        worst = max(losses, key=losses.get) if losses else None
        verdicts.append({"variant": variant, "precision": precision, "qualifies": ok,
                         "inputs_measured": len(losses), "inputs": len(inputs), "complete": complete,
                         "worst_loss": losses[worst] if losses else None, "worst_input": worst,
                         "losses": losses, "inference_ms_640x360": ms.get((variant, precision))})
    qualified = [v for v in verdicts if v["qualifies"] and v["inference_ms_640x360"] is not None]
    best = min(qualified, key=lambda v: v["inference_ms_640x360"]) if qualified else None
    return {"tolerance": tolerance, "verdicts": verdicts, "chosen": best}


def accuracy_table(payload: dict[str, Any]) -> str:
    rows = payload.get("accuracy", [])
    inputs = list(dict.fromkeys(r["input"] for r in rows))
    columns = list(dict.fromkeys((r["variant"], r["precision"]) for r in rows))
    by = {(r["input"], r["variant"], r["precision"]): r for r in rows}
    body = []
    for name in inputs:
        cells = [name]
        for key in columns:
            r = by.get((name, *key))
            cells.append("n/a" if r is None else f"{fmt(r['miou'])} ± {fmt(r['miou_std'])}")
        body.append(cells)
    return markdown_table(["input", *(f"{v} {p}" for v, p in columns)], body)


def timing_table(payload: dict[str, Any]) -> str:
    rows = payload.get("timing", [])
    body = [[t["size"], t["variant"], t["precision"], t["what"], fmt(t["ms"], 1), fmt(t["wall_ms_min"], 1),
             fmt(t["gflops"] / (t["ms"] / 1000.0), 1) if t["what"].startswith("inference") else ""]
            for t in rows if t["variant"] != "keyframe"]
    return markdown_table(["size", "normalisation", "precision", "step", "CPU ms (median)", "wall ms (min)",
                           "GFLOP/s (CPU time)"], body)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "normalisation", "environment": env,
                               "args": json.loads(json.dumps(vars(args), default=str)),
                               "variants": VARIANTS, "precisions": PRECISIONS, "runs": [], "timing": []}
    if args.timing_from is not None:
        earlier = json.loads(args.timing_from.read_text())
        payload["timing"], payload["timing_args"] = earlier["timing"], earlier["args"]
        payload["timing_environment"] = earlier["environment"]
    elif not args.skip_timing:
        timing(args, payload)
    if args.accuracy_from is not None:
        earlier = [json.loads(path.read_text()) for path in args.accuracy_from]
        runs = {(r["input"], r["variant"], r["precision"], r["seed"]): r for e in earlier for r in e["runs"]}
        payload["runs"] = list(runs.values())  # a run made twice counts once (the later)
        payload["accuracy_args"] = [e["args"] for e in earlier]
        payload["accuracy"] = aggregate(payload["runs"])
    elif not args.skip_accuracy:
        accuracy(args, payload)
    payload["choice"] = choose(payload, args.tolerance)
    write_results(args.out, payload)
    print("# Normalisation and precision of the student\n")
    print(f"{describe_environment(payload.get('timing_environment', env))}.\n")
    if payload.get("accuracy"):
        a = (payload.get("accuracy_args") or [payload["args"]])[0]
        seeds = sorted({r["seed"] for r in payload["runs"]})
        print(f"mIoU (real clip: person IoU), mean ± standard deviation over seeds {seeds}; synthetic "
              f"{a['width']}x{a['height']}, {a['frames']} frames; real clip {a['clip_width']} wide, oracle/replayed "
              "teacher, every frame scored.\n")
        print(accuracy_table(payload) + "\n")
    if payload["timing"]:
        t = payload.get("timing_args") or payload["args"]
        print(f"Milliseconds per frame, batch 1, channels_last, {t['threads']} thread(s): the thread's CPU "
              f"time (median of {t['repeats']} rounds; a loaded machine inflates wall time, not this) and the "
              "fastest wall time; variants interleaved within each round.\n")
        print(timing_table(payload) + "\n")
    verdicts = [[v["variant"], v["precision"],
                 f"{v['inputs_measured']}/{v['inputs']}" + ("" if v["complete"] else " (incomplete)"),
                 f"{fmt(v['worst_loss'])} ({v['worst_input']})" if v["worst_input"] else "n/a",
                 fmt(v["inference_ms_640x360"], 1), "yes" if v["qualifies"] else "no"]
                for v in payload["choice"]["verdicts"]]
    if verdicts:
        print(f"The rule: mIoU within {args.tolerance} of {' '.join(BASELINE)} on every input.\n")
        print(markdown_table(["normalisation", "precision", "inputs measured", "worst mIoU loss, same seeds (input)",
                              "inference CPU ms 640x360", "qualifies"], verdicts) + "\n")
    chosen = payload["choice"]["chosen"]
    print("Choice: " + ("none qualifies" if chosen is None else
                        f"{chosen['variant']} {chosen['precision']} (worst mIoU loss {fmt(chosen['worst_loss'])})"))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
