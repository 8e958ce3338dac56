"""The student's FLOP rate inside a real ``odist distill`` against the microbenchmark's and the GEMM peak.

In one process, at ``--threads`` torch threads: the fp32 (and bf16) GEMM peak of ``torch.matmul``
(``bench/student_cpu.py``'s measurement); the microbenchmark, i.e. the shipped student's inference and one
update at ``--size`` on a rendered frame, batch 1, channels_last, median of ``--repeats``; then
``odist distill synthetic:SCENARIO`` at that size (oracle teacher, ``--frames`` frames), whose cost ledger
holds the student's measured seconds and counted GFLOPs of its inference and of its updates. The table
gives each one's GFLOP/s and its share of the GEMM peak, and the pipeline's rate over the microbenchmark's.
``--set`` overrides apply to both (e.g. ``performance.amp=bf16``; the peak is then bf16's).

``--clock cpu`` (the default) times the microbenchmark, and the distiller's clock
(``device_time`` in ``odist.distill.distiller``),
and the peak, by the calling thread's CPU time: with one torch thread all the work runs there, and a loaded
machine then inflates none of them. ``--clock wall`` keeps wall time (for a quiet machine or several threads).

Run::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/student_efficiency.py

Tiny check::

    python bench/student_efficiency.py --size 96x64 --frames 8 --repeats 1 --peak-size 256 \\
        --out /tmp/student_efficiency.json
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results
from student_cpu import frame_and_input

import odist
from odist.config import load_config
from odist.distill.learning import class_map, new_student
from odist.distill.loss import distillation_loss, foreground_weights
from odist.models.flops import count_gflops
from odist.models.fold import fold_batchnorm, has_running_stats


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    p.add_argument("--scenario", default="traffic", help="synthetic scenario of the distill run")
    p.add_argument("--frames", type=int, default=120, help="frames of the distill run (default 120)")
    p.add_argument("--repeats", type=int, default=10, help="timed microbenchmark runs (median)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--peak-size", type=int, default=2048, help="side of the peak's square matmul")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="time by thread CPU time or wall time")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "student_efficiency.json")
    return p.parse_args(argv)


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def median_ms(fn: Any, repeats: int, clock: Any) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append((clock() - start) * 1000.0)
    return statistics.median(times)


def gemm_peak(dtype: torch.dtype, size: int, clock: Any) -> float:
    """GFLOP/s of a ``size``-square matmul in ``dtype`` (``bench/student_cpu.py``'s peak, on ``clock``)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    return 2 * size**3 / (median_ms(lambda: torch.matmul(a, b), 5, clock) / 1000.0) / 1e9


def microbenchmark(config: Any, width: int, height: int, repeats: int, clock: Any) -> dict[str, float]:
    """The shipped student's inference and one update at the size, as ``student_cpu.py`` runs them."""
    frame, image = frame_and_input(width, height)
    image = image.contiguous(memory_format=torch.channels_last)
    model = new_student(config).to(memory_format=torch.channels_last)
    d = config.distill
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if config.performance.amp == "bf16" \
        else contextlib.nullcontext
    target = torch.from_numpy(frame.truth.astype(np.int64)).unsqueeze(0)
    weights = foreground_weights(frame.truth_boxes, height, width, weight=d.foreground_weight,
                                 dilation=d.box_dilation, device=torch.device("cpu")).unsqueeze(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=d.lr, momentum=d.momentum, weight_decay=d.weight_decay)

    def update() -> None:
        model.train()
        with amp():
            logits = model(image)
        loss = distillation_loss(logits.float(), target, weights, d.iou_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    update_ms = median_ms(update, repeats, clock)
    model.eval()
    forward = fold_batchnorm(model).to(memory_format=torch.channels_last) if has_running_stats(model) else model

    def infer() -> None:
        with torch.inference_mode(), amp():
            class_map(forward(image)[0].float())

    return {"inference_ms": median_ms(infer, repeats, clock), "update_ms": update_ms,
            "inference_gflops": count_gflops(model, height, width),
            "update_gflops": count_gflops(model, height, width, backward=True)}


def pipeline(args: argparse.Namespace, width: int, height: int) -> dict[str, Any]:
    """``odist distill`` of a synthetic stream: the ledger's student seconds and GFLOPs."""
    with tempfile.TemporaryDirectory(prefix="student-efficiency-") as tmp, \
            mock.patch("odist.distill.distiller.device_time", lambda device: CLOCKS[args.clock]()):
        s = odist.distill(f"synthetic:{args.scenario}", tmp, overwrite=True, overrides=[
            *args.overrides, f"threads={args.threads}", f"source.width={width}", f"source.height={height}",
            f"source.frames={args.frames}"])
    ledger = s["ledger"]
    return {"frames": s["frames"], "keyframes": s["keyframes"], "updates": s["updates"],
            "wall_seconds": s["wall_seconds"],
            "inference_seconds": ledger["student_inference_seconds"],
            "inference_gflops": ledger["student_inference_gflops"],
            "update_seconds": ledger["student_update_seconds"], "update_gflops": ledger["student_update_gflops"]}


def rows(result: dict[str, Any]) -> list[list[str]]:
    peak, micro, pipe = result["peak_gflops_per_s"], result["microbenchmark"], result["pipeline"]
    out = []
    for what in ("inference", "update"):
        micro_rate = micro[f"{what}_gflops"] / (micro[f"{what}_ms"] / 1000.0)
        pipe_rate = pipe[f"{what}_gflops"] / pipe[f"{what}_seconds"] if pipe[f"{what}_seconds"] else float("nan")
        result[f"{what}_microbenchmark_gflops_per_s"] = micro_rate
        result[f"{what}_pipeline_gflops_per_s"] = pipe_rate
        out.append([what, fmt(peak, 1), fmt(micro_rate, 1), fmt(100 * micro_rate / peak, 1, "%"),
                    fmt(pipe_rate, 1), fmt(100 * pipe_rate / peak, 1, "%"), fmt(pipe_rate / micro_rate, 2)])
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    env = environment("cpu")
    width, height = (int(v) for v in args.size.lower().split("x"))
    config = load_config(overrides=args.overrides, environ={})
    dtype = torch.bfloat16 if config.performance.amp == "bf16" else torch.float32
    result: dict[str, Any] = {"benchmark": "student_efficiency", "environment": env,
                              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                              "peak_dtype": str(dtype).removeprefix("torch."),
                              "peak_gflops_per_s": gemm_peak(dtype, args.peak_size, CLOCKS[args.clock])}
    print(f"peak {result['peak_gflops_per_s']:.1f} GFLOP/s", file=sys.stderr)
    result["microbenchmark"] = microbenchmark(config, width, height, args.repeats, CLOCKS[args.clock])
    print(f"microbenchmark {result['microbenchmark']}", file=sys.stderr)
    result["pipeline"] = pipeline(args, width, height)
    table = markdown_table(["student step", f"GEMM peak ({result['peak_dtype']}, GFLOP/s)", "microbenchmark GFLOP/s",
                            "of peak", "odist distill GFLOP/s", "of peak", "distill / microbenchmark"], rows(result))
    write_results(args.out, result)
    p = result["pipeline"]
    print("# The student's efficiency in the pipeline\n")
    print(f"{describe_environment(env)}. {args.size}, {args.clock} time, overrides {args.overrides or 'none'}; "
          "odist distill "
          f"synthetic:{args.scenario}, {p['frames']} frames, {p['keyframes']} keyframes, {p['updates']} updates.\n")
    print(table)
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
