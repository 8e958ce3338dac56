"""The student on the CPU: how fast JITNet runs against the CPU's own GEMM peak, and what makes it faster.

In one run, on one machine:

1. The peak: the median GFLOP/s of a 2048x2048 fp32 ``torch.matmul`` (and bf16, for reference) at the
   run's thread count: the denominator of every "% of peak".
2. JITNet (``--width`` multiplier, the default student's fine skips) at each frame size (default 1280x720
   and 640x360), in each variant: ``eager`` (today's default: fp32, contiguous, eager), ``channels_last``,
   ``freeze`` (``torch.jit.trace`` + ``freeze`` + ``optimize_for_inference``: oneDNN fusion, inference
   only, since the weights it bakes in change with every update), ``compile`` (``torch.compile``,
   inductor), ``bf16`` (CPU autocast), ``threads1`` (one torch thread instead of the run's), and the
   combinations given by ``--variants``.
3. For each: the median ms of one inference (eval mode, forward + argmax to a class map) and of one
   update (forward, the distillation loss, backward, one SGD step), the % of peak (counted GFLOPs over
   the time), the speed-up over ``eager``, and how far the variant's class map is from eager's: the
   fraction of pixels that differ and the mIoU of the variant's map against eager's, for a student first
   trained on the scene for ``--train-steps`` updates, so that its maps are not noise.

Run (about 10 minutes on 2 CPUs; jemalloc makes CPU torch about 2x faster)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/student_cpu.py

Tiny check::

    python bench/student_cpu.py --sizes 96x64 --repeats 1 --warmup 0 --train-steps 1 --peak-size 256 \
        --variants eager bf16
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results

from odist.config import load_config
from odist.distill.distiller import IMAGE_MEAN, IMAGE_STD
from odist.distill.loss import distillation_loss, foreground_weights
from odist.distill.metrics import confusion, mean_iou
from odist.models.flops import count_gflops
from odist.models.jitnet import JITNet, jitnet
from odist.video.frame import Frame
from odist.video.synthetic import SyntheticSource

VARIANTS = ("eager", "channels_last", "freeze", "compile", "bf16", "threads1", "channels_last+bf16",
            "channels_last+freeze", "channels_last+compile", "compile+bf16")
SWITCHES = ("channels_last", "freeze", "compile", "bf16", "threads1")
SPEEDUP_TARGET = 1.5


@dataclass(frozen=True)
class Variant:
    """One way of running the student: a set of ``SWITCHES``."""

    name: str
    switches: frozenset[str]

    @classmethod
    def parse(cls, name: str) -> Variant:
        switches = frozenset() if name == "eager" else frozenset(name.split("+"))
        unknown = sorted(switches - set(SWITCHES))
        if unknown:
            raise SystemExit(f"--variants {name!r}: unknown switch {unknown[0]!r} (use eager or "
                             f"{'+'.join(SWITCHES)} combinations)")
        return cls(name, switches)

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cpu", dtype=torch.bfloat16) if "bf16" in self.switches else contextlib.nullcontext()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["1280x720", "640x360"], help="frame sizes WxH")
    p.add_argument("--width", type=float, default=1.0, help="JITNet width multiplier (default 1.0)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), help="variants, e.g. channels_last+bf16")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing (compile: the first compiles)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--train-steps", type=int, default=20, help="updates that train the student before the "
                                                               "maps are compared (default 20)")
    p.add_argument("--peak-size", type=int, default=2048, help="side of the square matmul that measures the "
                                                               "GEMM peak (default 2048)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "student_cpu.json", help="JSON results path")
    args = p.parse_args(argv)
    if args.peak_size < 1:
        p.error(f"--peak-size {args.peak_size} is not positive")
    args.variant_list = [Variant.parse(name) for name in args.variants]
    if "eager" not in args.variants:
        args.variant_list.insert(0, Variant.parse("eager"))
    return args


def median_ms(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


# -- the peak ---------------------------------------------------------------------------------------


def gemm_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP/s of a ``size``-square matmul in ``dtype`` at the current thread count."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    ms = median_ms(lambda: torch.matmul(a, b), repeats, 2)
    return 2 * size**3 / (ms / 1000.0) / 1e9


# -- the student ------------------------------------------------------------------------------------


def frame_and_input(width: int, height: int) -> tuple[Frame, torch.Tensor]:
    """A rendered ``traffic`` frame and the normalised (1, 3, H, W) image the distiller feeds the student."""
    frame = SyntheticSource("traffic", width=width, height=height, frames=1).frame(0)
    x = torch.from_numpy(np.ascontiguousarray(frame.image)).permute(2, 0, 1).unsqueeze(0).float().div_(255)
    x = (x - torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return frame, x


def trained_student(width: float, frame: Frame, image: torch.Tensor, steps: int) -> JITNet:
    """The default student after ``steps`` eager updates on ``frame``'s truth (maps worth comparing)."""
    config = load_config(overrides=[f"student.width={width}"], environ={})
    s = config.student
    torch.manual_seed(0)
    model = jitnet(len(config.classes), width, s.units, s.batch_stats_at_inference, s.fine_skips)
    update = update_step(model, image, frame, Variant("eager", frozenset()), in_place=True)
    for _ in range(steps):
        update()
    return model.eval()


def prepared(model: JITNet, image: torch.Tensor, variant: Variant, train: bool) -> tuple[Any, torch.Tensor]:
    """(the callable forward, its input) of ``variant``: a copy of ``model`` laid out, frozen or compiled."""
    model = copy.deepcopy(model).train(train)
    if "channels_last" in variant.switches:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    if "freeze" in variant.switches and not train:
        with torch.no_grad(), variant.autocast():
            traced = torch.jit.trace(model, image, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced)), image
    if "compile" in variant.switches:
        return torch.compile(model), image
    return model, image


def inference_step(model: JITNet, image: torch.Tensor, variant: Variant) -> Callable[[], torch.Tensor]:
    forward, image = prepared(model, image, variant, train=False)

    def step() -> torch.Tensor:
        with torch.inference_mode(), variant.autocast():
            return forward(image).argmax(1).to(torch.uint8)

    return step


def update_step(model: JITNet, image: torch.Tensor, frame: Frame, variant: Variant,
                in_place: bool = False) -> Callable[[], None]:
    """One update on ``frame``'s truth: on a copy of ``model`` prepared for ``variant`` (``in_place``: on
    ``model`` itself, eager)."""
    d = load_config(environ={}).distill
    target = torch.from_numpy(frame.truth.astype(np.int64)).unsqueeze(0)
    weights = foreground_weights(frame.truth_boxes, frame.height, frame.width, weight=d.foreground_weight,
                                 dilation=d.box_dilation, device=torch.device("cpu")).unsqueeze(0)
    forward, image = (model.train(), image) if in_place else prepared(model, image, variant, train=True)
    optimizer = torch.optim.SGD(forward.parameters(), lr=d.lr, momentum=d.momentum, weight_decay=d.weight_decay)

    def step() -> None:
        with variant.autocast():
            logits = forward(image)
        loss = distillation_loss(logits.float(), target, weights, d.iou_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(size: str, args: argparse.Namespace, threads: int) -> list[dict[str, Any]]:
    """Every variant at one frame size; the first row is ``eager``."""
    width, height = (int(v) for v in size.lower().split("x"))
    frame, image = frame_and_input(width, height)
    model = trained_student(args.width, frame, image, args.train_steps)
    gflops = count_gflops(model, height, width)
    update_gflops = count_gflops(model, height, width, backward=True)
    eager_map = inference_step(model, image, Variant("eager", frozenset()))()
    classes = len(load_config(environ={}).classes)
    rows = []
    for variant in args.variant_list:
        torch.set_num_threads(1 if "threads1" in variant.switches else threads)
        print(f"{size} {variant.name} ...", file=sys.stderr, flush=True)
        try:
            infer = inference_step(model, image, variant)
            infer_ms = median_ms(infer, args.repeats, args.warmup)
            mask = infer()
            update_ms = None if "freeze" in variant.switches else median_ms(
                update_step(model, image, frame, variant), args.repeats, args.warmup)
            error = None
        except Exception as exc:  # a variant this torch or CPU cannot run: reported, the others go on
            infer_ms = update_ms = None
            mask, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        row = {"size": size, "variant": variant.name, "threads": torch.get_num_threads(), "gflops": gflops,
               "update_gflops": update_gflops, "inference_ms": infer_ms, "update_ms": update_ms, "error": error}
        if mask is not None:
            conf = confusion(mask[0].numpy(), eager_map[0].numpy(), classes)
            row["pixels_differing"] = float((mask != eager_map).float().mean())
            row["miou_vs_eager"] = float(mean_iou(conf))
        rows.append(row)
        torch.set_num_threads(threads)
    return rows


def add_ratios(rows: list[dict[str, Any]], peak: float) -> None:
    """% of peak and speed-ups over the same size's ``eager`` row."""
    base = {r["size"]: r for r in rows if r["variant"] == "eager"}
    for r in rows:
        eager = base[r["size"]]
        for kind, flops in (("inference", "gflops"), ("update", "update_gflops")):
            ms = r[f"{kind}_ms"]
            r[f"{kind}_peak_percent"] = None if ms is None else 100.0 * r[flops] / (ms / 1000.0) / peak
            r[f"{kind}_speedup"] = None if ms is None or eager[f"{kind}_ms"] is None else eager[f"{kind}_ms"] / ms


def table(rows: list[dict[str, Any]]) -> str:
    headers = ["size", "variant", "threads", "inference ms", "% of peak", "x eager", "update ms", "% of peak",
               "x eager", "pixels differing", "mIoU vs eager"]
    body = [[r["size"], r["variant"], str(r["threads"]), fmt(r["inference_ms"], 0), fmt(r["inference_peak_percent"], 1),
             fmt(r["inference_speedup"], 2, "x"), fmt(r["update_ms"], 0), fmt(r["update_peak_percent"], 1),
             fmt(r["update_speedup"], 2, "x"), fmt(r.get("pixels_differing"), 4), fmt(r.get("miou_vs_eager"), 4)]
            if not r["error"] else [r["size"], r["variant"], str(r["threads"]), r["error"], *[""] * 7]
            for r in rows]
    return markdown_table(headers, body)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    threads = torch.get_num_threads()
    env = environment("cpu")
    started = time.perf_counter()
    peak = gemm_peak(torch.float32, args.peak_size)
    peak_bf16 = gemm_peak(torch.bfloat16, args.peak_size)
    rows = [row for size in args.sizes for row in measure(size, args, threads)]
    add_ratios(rows, peak)
    best = {size: max((r for r in rows if r["size"] == size and r["inference_speedup"]),
                      key=lambda r: r["inference_speedup"]) for size in args.sizes}
    print(describe_environment(env))
    print(f"JITNet x{args.width} (fine skips), trained {args.train_steps} updates on a traffic frame; "
          f"fp32 GEMM peak {peak:.1f} GFLOP/s, bf16 {peak_bf16:.1f} GFLOP/s at {threads} threads")
    print(table(rows))
    for size, r in best.items():
        status = "PASS" if r["inference_speedup"] >= SPEEDUP_TARGET else "FAIL"
        print(f"{status}: fastest inference at {size} >= {SPEEDUP_TARGET}x eager — {r['variant']} "
              f"{r['inference_speedup']:.2f}x (mIoU vs eager {fmt(r.get('miou_vs_eager'), 4)})")
    settings = {k: v for k, v in vars(args).items() if k != "variant_list"} | {"out": str(args.out)}
    payload = {"benchmark": "student_cpu", "environment": env, "args": settings,
               "gemm_peak_gflops": {"fp32": peak, "bf16": peak_bf16}, "rows": rows,
               "best": {size: r["variant"] for size, r in best.items()}, "target_speedup": SPEEDUP_TARGET,
               "wall_seconds": time.perf_counter() - started}
    write_results(args.out, payload)
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
