"""GPU pipeline: students per GPU, teacher frames/s per replica and the end-to-end speed-up (CUDA).

Three measurements on one CUDA device, in this order:

* (b) teacher: torchvision Mask R-CNN R50-FPN v1 with random weights (``weights=None,
  weights_backbone=None``), the ``maskrcnn`` teacher, labelling rendered ``traffic`` frames in one
  batch of 1, 2, 4 and 8 with ``performance.teacher_amp`` off, fp16 and bf16. Median milliseconds per
  batch of ``detect`` (the model alone) and of ``label`` (model + dense class maps on the host), and
  the frames/s per replica they imply. Random weights fill the detection slots, so ``label`` pays for
  more masks than a trained teacher would; ``detect`` is the model's own cost.
* (a) students: the real ``OnlineDistiller`` with the ``performance`` switches of each setting (amp
  off / bf16 / fp16, channels_last, pinned uploads; ``--compile`` adds torch.compile) runs the
  adaptive schedule (config defaults) on a ``traffic`` stream at 1280x720 after a warm-up on a separate
  distiller. From its ledger (CUDA-synchronised): student GPU ms per frame (inference on ordinary
  frames, updates on keyframes, averaged over all frames), and::

      students per GPU (compute) = 1000 / (fps x student ms per frame)
      students per GPU (memory)  = total memory / (peak allocated + --context-mib per process)

  assuming perfect packing of independent students; the reported figure is the smaller of the two.
  The teacher is not on the student GPU (it runs on its own replicas).
* (c) pipeline: the same runs score every frame against the oracle (evaluation cost excluded) and
  charge the oracle at the measured Mask R-CNN ``label`` time of one frame at batch 1 without amp
  (``teacher.charged_ms``), so the speed-up over running the teacher on every frame is::

      N x T / (student seconds + K x T)

  also reported with T = the best per-frame time of (b) (the fastest dtype and batch, as a teacher
  pool would run). mIoU is over all frames.

Results: a Markdown table per part on stdout and ``bench/results/gpu_pipeline.json`` (``--out``).
Without CUDA the script exits 2, unless ``--device cpu`` asks for the CPU smoke check (fp16 and pinned
uploads then fall back, as the config does on the CPU).

Run (H100, about 5 minutes)::

    python bench/gpu_pipeline.py --quick

Full::

    python bench/gpu_pipeline.py --frames 450 --repeats 10 --compile

CPU smoke check (tiny sizes)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/gpu_pipeline.py --device cpu --quick \\
        --out /tmp/gpu_pipeline_cpu.json
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results

from odist.config import OdistConfig, PerformanceConfig, TeacherConfig, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.runner import StreamRunner
from odist.errors import OdistError
from odist.models.teachers import build_teacher
from odist.models.teachers.coco import COCO_NAMES
from odist.models.teachers.maskrcnn import MaskRCNNTeacher
from odist.video.frame import Frame
from odist.video.synthetic import SyntheticSource

MIB = 1024**2
TEACHER_AMPS = ("off", "fp16", "bf16")
# Every COCO category maps to a stream class, so the class maps paint what the model detects.
ALL_GROUPS = {"person": list(COCO_NAMES[:27]), "vehicle": list(COCO_NAMES[27:54]), "bike": list(COCO_NAMES[54:])}
STUDENT_SETTINGS: dict[str, list[str]] = {
    "fp32": [],
    "fp32 + channels_last": ["performance.channels_last=true"],
    "bf16": ["performance.amp=bf16"],
    "bf16 + channels_last": ["performance.amp=bf16", "performance.channels_last=true"],
    "fp16 + channels_last": ["performance.amp=fp16", "performance.channels_last=true"],
    "bf16 + channels_last + pinned": ["performance.amp=bf16", "performance.channels_last=true",
                                      "performance.pinned_uploads=true"],
}
COMPILED_SETTING = ("bf16 + channels_last + compile",
                    ["performance.amp=bf16", "performance.channels_last=true", "performance.compile=true"])
# Tiny sizes for ``--device cpu --quick``: a smoke check of every code path, not a measurement.
CPU_QUICK = {"width": 128, "height": 72, "frames": 24, "warmup_frames": 2, "batches": [1, 2], "repeats": 1,
             "teacher_options": "min_size=64,max_size=96,rpn_pre_nms_top_n_test=100,rpn_post_nms_top_n_test=50,"
                                "box_detections_per_img=8"}
GPU_QUICK = {"frames": 150, "repeats": 3}


class NoCuda(Exception):
    """No CUDA device is visible and the CPU smoke check was not asked for."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda | cuda:N (cpu: smoke check only)")
    p.add_argument("--quick", action="store_true", help="fewer frames and repeats (under 8 minutes on an H100)")
    p.add_argument("--width", type=int, default=None, help="frame width (default 1280)")
    p.add_argument("--height", type=int, default=None, help="frame height (default 720)")
    p.add_argument("--fps", type=float, default=30.0, help="stream frame rate for students per GPU (default 30)")
    p.add_argument("--frames", type=int, default=None, help="frames per student run (default 450; quick 150)")
    p.add_argument("--warmup-frames", type=int, default=None, help="frames of the warm-up distiller (default 8)")
    p.add_argument("--scenario", default="traffic", help="synthetic scenario (default traffic)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="teacher batch sizes (default 1 2 4 8)")
    p.add_argument("--teacher-amps", nargs="+", choices=TEACHER_AMPS, default=list(TEACHER_AMPS),
                   help="teacher autocast modes (default off fp16 bf16)")
    p.add_argument("--teacher-options", default=None, help="maskrcnn:KEY=N,... options (default: torchvision's)")
    p.add_argument("--repeats", type=int, default=None, help="timed teacher runs, median reported (default 10)")
    p.add_argument("--compile", action="store_true", help="add a torch.compile student setting")
    p.add_argument("--context-mib", type=float, default=512.0,
                   help="CUDA context memory per student process, outside torch's allocator (default 512)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every student run (repeatable)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "gpu_pipeline.json", help="JSON results path")
    args = p.parse_args(argv)
    _fill_defaults(args)
    if min(args.frames, args.width, args.height, args.repeats, *args.batches) < 1 or args.warmup_frames < 0:
        p.error("sizes, frames, repeats and batches must be positive")
    return args


def _fill_defaults(args: argparse.Namespace) -> None:
    """Defaults by mode: full, ``--quick`` on a GPU, or tiny sizes for ``--device cpu --quick``."""
    cpu = torch.device(args.device).type == "cpu"
    preset: dict[str, Any] = {"width": 1280, "height": 720, "frames": 450, "warmup_frames": 8,
                              "batches": [1, 2, 4, 8], "repeats": 10, "teacher_options": None}
    if args.quick:
        preset.update(CPU_QUICK if cpu else GPU_QUICK)
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def check_device(device: str) -> torch.device:
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise NoCuda("bench/gpu_pipeline.py measures GPU throughput but this torch sees no CUDA GPU: run it on a "
                     "CUDA machine, or pass --device cpu --quick for a smoke check of its code paths")
    if resolved.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return resolved


# -- helpers ---------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall milliseconds of ``fn`` over ``repeats`` synchronised runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def release(device: torch.device) -> None:
    """Free what the last measurement left on the device and reset its peak-memory counter."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def render(args: argparse.Namespace) -> list[Frame]:
    count = max(args.frames, max(args.batches))
    print(f"rendering {count} {args.scenario} frames at {args.width}x{args.height} ...", file=sys.stderr)
    return list(SyntheticSource(args.scenario, width=args.width, height=args.height, frames=count, seed=0))


# -- (b) the teacher -------------------------------------------------------------------------------


def build_maskrcnn(args: argparse.Namespace, device: torch.device) -> MaskRCNNTeacher:
    config = TeacherConfig(weights="random", arch="v1", class_groups=ALL_GROUPS, batch_size=max(args.batches))
    spec = f"maskrcnn:{args.teacher_options}" if args.teacher_options else "maskrcnn"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random weights.*")  # expected: a cost benchmark
        teacher = build_teacher(spec, config, load_config(environ={}).classes, str(device))
    assert isinstance(teacher, MaskRCNNTeacher)
    return teacher


def measure_teacher(teacher: MaskRCNNTeacher, frames: Sequence[Frame], args: argparse.Namespace,
                    device: torch.device) -> list[dict[str, Any]]:
    """One row per (teacher amp, batch size): ms per batch and frames/s of ``detect`` and ``label``."""
    rows = []
    for amp in args.teacher_amps:
        teacher.use_performance(PerformanceConfig(teacher_amp=amp))
        effective = {None: "off", torch.float16: "fp16", torch.bfloat16: "bf16"}[teacher.amp_dtype]
        for batch in args.batches:
            print(f"teacher amp {amp} batch {batch} ...", file=sys.stderr)
            rows.append(_teacher_row(teacher, list(frames[:batch]), amp, effective, args, device))
    return rows


def _teacher_row(teacher: MaskRCNNTeacher, batch: list[Frame], amp: str, effective: str,
                 args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    row: dict[str, Any] = {"teacher_amp": amp, "effective_amp": effective, "batch": len(batch)}
    try:
        detections = [len(d["scores"]) for d in teacher.detect(batch)]
        detect_ms = median_ms(lambda: teacher.detect(batch), device, args.repeats)
        label_ms = median_ms(lambda: teacher.label(batch), device, args.repeats)
    except (OdistError, RuntimeError) as exc:  # out of memory at a large batch: record, go on
        release(device)
        return row | {"error": str(exc).splitlines()[0]}
    n = len(batch)
    return row | {"detections_per_frame": statistics.mean(detections), "detect_ms": detect_ms,
                  "label_ms": label_ms, "detect_fps": 1000.0 * n / detect_ms, "label_fps": 1000.0 * n / label_ms,
                  "label_ms_per_frame": label_ms / n}


def teacher_costs(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per-frame teacher ms to charge: batch 1 without amp (the baseline) and the best of all rows."""
    ok = [r for r in rows if "error" not in r]
    if not ok:
        raise OdistError("every teacher measurement failed", "see the errors in the teacher table")
    baseline = [r for r in ok if r["batch"] == 1 and r["effective_amp"] == "off"] or ok
    return {"baseline_ms": baseline[0]["label_ms_per_frame"], "best_ms": min(r["label_ms_per_frame"] for r in ok)}


# -- (a) + (c) the students ------------------------------------------------------------------------


class DiscardSink:
    def add(self, record: dict[str, Any], mask: Any) -> None:
        pass


def student_config(args: argparse.Namespace, overrides: list[str], charged_ms: float) -> OdistConfig:
    return load_config(overrides=[*args.overrides, *overrides, f"device={args.device}",
                                  f"teacher.charged_ms={charged_ms:.3f}"])


def measure_student(name: str, overrides: list[str], frames: list[Frame], costs: dict[str, float],
                    args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Warm up, then distil ``frames`` with the adaptive schedule and the setting's switches."""
    print(f"student {name} ...", file=sys.stderr)
    config = student_config(args, overrides, costs["baseline_ms"])
    teacher = build_teacher("oracle", config.teacher, config.classes)
    warm = OnlineDistiller(config, teacher)
    for frame in frames[: args.warmup_frames]:
        warm.step(frame)
    del warm
    release(device)
    distiller = OnlineDistiller(config, teacher)
    runner = StreamRunner(distiller, DiscardSink(), evaluator=teacher)
    runner.run(frames[: args.frames], total=args.frames)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    row = student_row(name, overrides, runner, distiller, costs, args, device, peak)
    del runner, distiller
    release(device)
    return row


def student_row(name: str, overrides: list[str], runner: StreamRunner, distiller: OnlineDistiller,
                costs: dict[str, float], args: argparse.Namespace, device: torch.device,
                peak: int | None) -> dict[str, Any]:
    ledger = distiller.ledger
    summary = runner.summary(distiller.config.classes)
    n, k = ledger.frames, ledger.keyframes
    student_s = ledger.student_inference_seconds + ledger.student_update_seconds
    ms_per_frame = 1000.0 * student_s / n
    a = distiller.acceleration
    return {
        "setting": name, "overrides": overrides,
        "effective": {"amp": {None: "off", torch.float16: "fp16", torch.bfloat16: "bf16"}[a.amp_dtype],
                      "channels_last": a.channels_last, "pinned_uploads": a.pinned_uploads, "compile": a.compile},
        "frames": n, "keyframes": k, "updates": ledger.updates, "keyframe_fraction": k / n,
        "inference_ms": 1000.0 * ledger.student_inference_seconds / max(n - k, 1),
        "update_ms": 1000.0 * ledger.student_update_seconds / max(ledger.updates, 1),
        "student_ms_per_frame": ms_per_frame, "peak_memory_mib": None if peak is None else peak / MIB,
        **students_per_gpu(ms_per_frame, peak, args, device),
        "miou": summary["miou"], "miou_foreground": summary["miou_foreground"],
        "speedup_measured": ledger.speedup_measured(),
        "speedup_best_teacher": speedup(n, k, student_s, costs["best_ms"]),
        "speedup_cost_model": summary["speedup_cost_model"],
    }


def students_per_gpu(ms_per_frame: float, peak_bytes: int | None, args: argparse.Namespace,
                     device: torch.device) -> dict[str, Any]:
    """How many such students one device holds: by GPU time at ``--fps`` and by memory."""
    compute = 1000.0 / (args.fps * ms_per_frame) if ms_per_frame > 0 else float("inf")
    if peak_bytes is None:
        return {"students_per_gpu_compute": compute, "students_per_gpu_memory": None, "students_per_gpu": None}
    total = torch.cuda.get_device_properties(device).total_memory
    memory = total / (peak_bytes + args.context_mib * MIB)
    return {"students_per_gpu_compute": compute, "students_per_gpu_memory": memory,
            "students_per_gpu": int(min(compute, memory))}


def speedup(frames: int, keyframes: int, student_seconds: float, teacher_ms: float) -> float:
    """Teacher on every frame over the student's time plus the keyframes' teacher time."""
    teacher_s = teacher_ms / 1000.0
    return frames * teacher_s / (student_seconds + keyframes * teacher_s)


# -- report ----------------------------------------------------------------------------------------


def teacher_table(rows: list[dict[str, Any]]) -> str:
    headers = ["teacher amp", "batch", "detections/frame", "detect ms/batch", "detect frames/s", "label ms/batch",
               "label frames/s"]
    body = [[f"{r['teacher_amp']} (ran {r['effective_amp']})" if r["teacher_amp"] != r["effective_amp"]
             else r["teacher_amp"], str(r["batch"]), fmt(r.get("detections_per_frame"), 1), fmt(r.get("detect_ms"), 1),
             fmt(r.get("detect_fps"), 1), fmt(r.get("label_ms"), 1), fmt(r.get("label_fps"), 1)] for r in rows]
    return markdown_table(headers, body)


def student_table(rows: list[dict[str, Any]], fps: float) -> str:
    headers = ["setting", "inference ms", "update ms", "student ms/frame", "peak MiB",
               f"students/GPU @{fps:g} fps (compute)", "(memory)", "students/GPU"]
    body = [[r["setting"], fmt(r["inference_ms"], 2), fmt(r["update_ms"], 2), fmt(r["student_ms_per_frame"], 2),
             fmt(r["peak_memory_mib"], 0), fmt(r["students_per_gpu_compute"], 1),
             fmt(r["students_per_gpu_memory"], 1),
             "n/a" if r["students_per_gpu"] is None else str(r["students_per_gpu"])] for r in rows]
    return markdown_table(headers, body)


def pipeline_table(rows: list[dict[str, Any]]) -> str:
    headers = ["setting", "mIoU", "mIoU fg", "keyframe fraction", "updates", "speed-up (T batch 1, fp32)",
               "speed-up (T best)", "speed-up (cost model)"]
    body = [[r["setting"], fmt(r["miou"]), fmt(r["miou_foreground"]), fmt(r["keyframe_fraction"]), str(r["updates"]),
             fmt(r["speedup_measured"], 1, "x"), fmt(r["speedup_best_teacher"], 1, "x"),
             fmt(r["speedup_cost_model"], 1, "x")] for r in rows]
    return markdown_table(headers, body)


def print_report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    costs = payload["teacher_ms_per_frame"]
    print("# GPU pipeline: students per GPU, teacher throughput, end-to-end speed-up\n")
    print(f"{describe_environment(payload['environment'])}. Frames {args.width}x{args.height} ({args.scenario}), "
          f"{args.frames} per student run after {args.warmup_frames} warm-up frames; teacher median of "
          f"{args.repeats} runs.\n")
    print("## (b) Mask R-CNN R50-FPN v1 per replica (random weights)\n")
    print(teacher_table(payload["teacher"]))
    print(f"\nCharged per keyframe: {costs['baseline_ms']:.1f} ms (batch 1, no amp); best per frame "
          f"{costs['best_ms']:.1f} ms.\n")
    print(f"## (a) JITNet students, adaptive schedule, at {args.fps:g} fps\n")
    print(student_table(payload["students"], args.fps))
    print("\n## (c) Pipeline vs teacher on every frame (oracle charged at the measured teacher time)\n")
    print(pipeline_table(payload["students"]))
    print(f"\nJSON: {args.out}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = check_device(args.device)
    set_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    env = environment(args.device)
    print(describe_environment(env), file=sys.stderr)
    frames = render(args)
    teacher = build_maskrcnn(args, device)
    teacher_rows = measure_teacher(teacher, frames, args, device)
    del teacher
    release(device)
    costs = teacher_costs(teacher_rows)
    settings = dict(STUDENT_SETTINGS)
    if args.compile:
        settings[COMPILED_SETTING[0]] = COMPILED_SETTING[1]
    payload: dict[str, Any] = {"benchmark": "gpu_pipeline", "environment": env,
                               "args": vars(args) | {"out": args.out.name}, "teacher": teacher_rows,
                               "teacher_ms_per_frame": costs, "students": []}
    for name, overrides in settings.items():
        payload["students"].append(measure_student(name, overrides, frames, costs, args, device))
        write_results(args.out, payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        payload = run(args)
    except NoCuda as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OdistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_results(args.out, payload)
    print_report(payload, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
