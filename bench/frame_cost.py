"""Per-frame cost of the JITNet student against the Mask R-CNN teacher.

At one frame size (default 1280x720, a rendered ``traffic`` frame) this measures, for JITNet at each
width multiplier (default 1.0 and 0.5) and for torchvision Mask R-CNN R50-FPN v1 and v2 (random weights):

* GFLOPs per frame: ``count_gflops`` of a JITNet forward pass, and of forward + backward (one update);
  the teacher's ``gflops_per_frame``. Random weights fill all 100 detection slots, so the teacher's
  mask-head FLOPs are near their upper bound (about 1 GFLOP per detection at 1280x720).
* Milliseconds per frame, the median of ``--repeats`` runs after ``--warmup`` runs: JITNet inference
  (eval mode, ``torch.inference_mode``, forward + argmax to a class map on the host); a JITNet update
  (forward, the distillation loss, backward and one SGD step); the teacher's ``label()`` of one frame.
* The teacher/student ratios of FLOPs and of milliseconds (inference).

Mask R-CNN resizes every frame to its own input size (shorter side 800, longer at most 1333), so its cost
hardly depends on the frame size while JITNet's scales with the pixels: ratios at small frames are
larger than at 1280x720.

Target reported: FLOP ratio >= 11x for Mask R-CNN v1 over JITNet 1.0 inference (PAPER.md: 11 to 26x).

``--device cuda`` runs on a GPU with autocast (``--amp``, bf16 by default there) and channels_last; on
the CPU neither is used unless asked. Under autocast the teacher's detections are cast to float32 before
they become a class map, since ``label()`` reads them with numpy (which has no bfloat16). FLOPs are
always counted in float32. Results go to ``bench/results/frame_cost.json``.

Run (full size, CPU)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/frame_cost.py

GPU::

    python bench/frame_cost.py --device cuda --amp bf16 --repeats 20 --warmup 3

Tiny check::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/frame_cost.py \\
        --width 320 --height 180 --repeats 1
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results

from odist.config import OdistConfig, load_config
from odist.distill.distiller import IMAGE_MEAN, IMAGE_STD
from odist.distill.loss import distillation_loss, foreground_weights
from odist.models.flops import count_gflops
from odist.models.jitnet import JITNet, jitnet
from odist.models.teachers import Labels, build_teacher
from odist.models.teachers.maskrcnn import MaskRCNNTeacher
from odist.video.frame import Frame
from odist.video.synthetic import SyntheticSource

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FLOP_RATIO_TARGET = 11.0
TEACHER_NAME = "Mask R-CNN R50-FPN {}"
STUDENT_NAME = "JITNet x{}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=1280, help="frame width (default 1280)")
    p.add_argument("--height", type=int, default=720, help="frame height (default 720)")
    p.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.5], help="JITNet width multipliers")
    p.add_argument("--archs", nargs="*", choices=["v1", "v2"], default=["v1", "v2"],
                   help="Mask R-CNN variants (none: students only)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--teacher-options", default="", metavar="KEY=N[,KEY=N]",
                   help="Mask R-CNN options as in --teacher maskrcnn:... (default: torchvision's 800/1333 resize, "
                        "the paper's)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--amp", choices=["auto", "none", *AMP_DTYPES], default="auto",
                   help="autocast dtype (auto: bf16 on CUDA, none on the CPU)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on for CUDA, off on the CPU)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "frame_cost.json", help="JSON results path")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: this torch sees no CUDA GPU")
    return args


@dataclass(frozen=True)
class Setup:
    """Where and how models run, and how they are timed."""

    device: torch.device
    amp: torch.dtype | None
    channels_last: bool
    repeats: int
    warmup: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Setup:
        device = torch.device(args.device)
        amp_name = ("bf16" if device.type == "cuda" else "none") if args.amp == "auto" else args.amp
        channels_last = device.type == "cuda" if args.channels_last is None else args.channels_last
        return cls(device, AMP_DTYPES.get(amp_name), channels_last, args.repeats, args.warmup)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def median_ms(self, fn: Callable[[], object]) -> float:
        """Median wall milliseconds of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
        for _ in range(self.warmup):
            fn()
        times = []
        for _ in range(self.repeats):
            self.sync()
            start = time.perf_counter()
            fn()
            self.sync()
            times.append((time.perf_counter() - start) * 1000.0)
        return statistics.median(times)

    def describe(self) -> str:
        amp = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp, "off")
        return f"autocast {amp}, channels_last {'on' if self.channels_last else 'off'}"


# -- the student ------------------------------------------------------------------------------------


def measure_student(width: float, config: OdistConfig, frame: Frame, setup: Setup) -> dict[str, Any]:
    """GFLOPs and median ms of JITNet inference and of one update on ``frame``."""
    s = config.student
    model = jitnet(len(config.classes), width, s.units, s.batch_stats_at_inference, s.fine_skips).to(setup.device)
    gflops = count_gflops(model, frame.height, frame.width)
    update_gflops = count_gflops(model, frame.height, frame.width, backward=True)
    if setup.channels_last:
        model = model.to(memory_format=torch.channels_last)
    image = student_input(frame, setup)
    infer_ms = setup.median_ms(inference_step(model, image, setup))
    update_ms = setup.median_ms(update_step(model, image, frame, config, setup))
    return {
        "model": STUDENT_NAME.format(width), "kind": "student", "width_multiplier": width,
        "params_millions": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": gflops, "ms": infer_ms, "update_gflops": update_gflops, "update_ms": update_ms,
    }


def student_input(frame: Frame, setup: Setup) -> torch.Tensor:
    """The normalised (1, 3, H, W) float image the distiller feeds the student."""
    x = torch.from_numpy(np.ascontiguousarray(frame.image)).to(setup.device)
    x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255)
    mean = torch.tensor(IMAGE_MEAN, device=setup.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=setup.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if setup.channels_last else x


def inference_step(model: JITNet, image: torch.Tensor, setup: Setup) -> Callable[[], torch.Tensor]:
    """One inference: forward in eval mode and argmax to a uint8 class map on the host."""
    model.eval()

    def step() -> torch.Tensor:
        with torch.inference_mode(), setup.autocast():
            return model(image).argmax(1).to(torch.uint8).cpu()

    return step


def update_step(model: JITNet, image: torch.Tensor, frame: Frame, config: OdistConfig,
                setup: Setup) -> Callable[[], None]:
    """One update on ``frame``'s truth: forward, weighted cross-entropy, backward, SGD step."""
    d = config.distill
    target = torch.from_numpy(frame.truth.astype(np.int64)).to(setup.device).unsqueeze(0)
    weights = foreground_weights(frame.truth_boxes, frame.height, frame.width, weight=d.foreground_weight,
                                 dilation=d.box_dilation, device=setup.device).unsqueeze(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=d.lr, momentum=d.momentum, weight_decay=d.weight_decay)
    scaler = torch.amp.GradScaler(setup.device.type, enabled=setup.amp == torch.float16)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with setup.autocast():
            logits = model(image)
        loss = distillation_loss(logits.float(), target, weights, d.iou_loss_weight)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


# -- the teacher ------------------------------------------------------------------------------------


def measure_teacher(arch: str, frame: Frame, setup: Setup, options: str = "") -> dict[str, Any]:
    """GFLOPs and median ms of Mask R-CNN ``arch`` (random weights, ``options`` as in ``maskrcnn:...``)
    labelling ``frame``."""
    config = load_config(overrides=[f"teacher.arch={arch}", "teacher.weights=random"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random weights.*")  # expected: this is a cost benchmark
        spec = f"maskrcnn:{options}" if options else "maskrcnn"
        teacher = build_teacher(spec, config.teacher, config.classes, str(setup.device))
    assert isinstance(teacher, MaskRCNNTeacher)
    gflops = teacher.gflops_per_frame(frame.height, frame.width)
    if setup.channels_last:
        teacher.model.to(memory_format=torch.channels_last)
    with setup.autocast():
        detections = len(teacher.detect([frame])[0]["scores"])
    if setup.amp is None:
        ms = setup.median_ms(lambda: teacher.label([frame]))
    else:
        ms = setup.median_ms(lambda: label_under_autocast(teacher, frame, setup))
    return {
        "model": TEACHER_NAME.format(arch), "kind": "teacher", "arch": arch,
        "params_millions": sum(p.numel() for p in teacher.model.parameters()) / 1e6,
        "gflops": gflops, "ms": ms, "detections": detections,
    }


def label_under_autocast(teacher: MaskRCNNTeacher, frame: Frame, setup: Setup) -> Labels:
    """``teacher.label([frame])`` with the model under autocast."""
    with setup.autocast():
        return teacher.label([frame])


# -- report -----------------------------------------------------------------------------------------


def ratios(teachers: list[dict[str, Any]], students: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Teacher over student inference, in FLOPs and in milliseconds, for every pair."""
    return [{"teacher": t["model"], "student": s["model"], "flop_ratio": t["gflops"] / s["gflops"],
             "ms_ratio": t["ms"] / s["ms"]} for t in teachers for s in students]


def flop_target(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """PASS/FAIL of the FLOP-ratio target, or not checked when v1 or JITNet 1.0 was not measured."""
    name = f"FLOP ratio >= {FLOP_RATIO_TARGET:g}x ({TEACHER_NAME.format('v1')} / {STUDENT_NAME.format(1.0)})"
    for pair in pairs:
        if pair["teacher"] == TEACHER_NAME.format("v1") and pair["student"] == STUDENT_NAME.format(1.0):
            status = "PASS" if pair["flop_ratio"] >= FLOP_RATIO_TARGET else "FAIL"
            return {"target": name, "status": status, "value": pair["flop_ratio"]}
    return {"target": name, "status": "not checked", "value": None}


def cost_table(models: list[dict[str, Any]]) -> str:
    headers = ["model", "params (M)", "GFLOPs/frame", "ms/frame", "update GFLOPs", "update ms", "detections"]
    rows = [[m["model"], fmt(m["params_millions"], 2), fmt(m["gflops"], 1), fmt(m["ms"], 1),
             fmt(m.get("update_gflops"), 1), fmt(m.get("update_ms"), 1),
             str(m["detections"]) if "detections" in m else "n/a"] for m in models]
    return markdown_table(headers, rows)


def ratio_table(pairs: list[dict[str, Any]]) -> str:
    headers = ["teacher", "student", "FLOP ratio", "ms ratio"]
    rows = [[p["teacher"], p["student"], fmt(p["flop_ratio"], 1, "x"), fmt(p["ms_ratio"], 1, "x")] for p in pairs]
    return markdown_table(headers, rows)


def print_report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    env, cost = payload["environment"], payload["cost_model_ms"]
    print("# Per-frame cost: JITNet student vs Mask R-CNN teacher\n")
    note = (" Mask R-CNN has random weights (its detections fill the 100 slots, so mask-head FLOPs are near "
            "their upper bound).") if payload["teachers"] else ""
    print(f"{describe_environment(env)}, {payload['setup']}. Frame {args.width}x{args.height}; median of "
          f"{args.repeats} runs after {args.warmup} warm-up runs.{note}\n")
    print(cost_table(payload["students"] + payload["teachers"]))
    if payload["ratios"]:
        print("\nTeacher / student inference:\n")
        print(ratio_table(payload["ratios"]))
    print(f"\nPaper cost model (GPU ms): teacher {cost['teacher_ms']:g}, student inference "
          f"{cost['student_inference_ms']:g}, update {cost['student_update_ms']:g} "
          f"(teacher/student {cost['teacher_ms'] / cost['student_inference_ms']:.1f}x).")
    t = payload["target"]
    print(f"\n## Target\n\n- {t['status']}: {t['target']} (measured {fmt(t['value'], 1, 'x')})")
    print(f"\nJSON: {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    setup = Setup.from_args(args)
    if setup.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    env = environment(args.device)
    print(f"{describe_environment(env)}, {setup.describe()}", file=sys.stderr)
    config = load_config()
    frame = SyntheticSource("traffic", width=args.width, height=args.height, frames=1).frame(0)
    students, teachers = [], []
    for width in args.widths:
        print(f"measuring {STUDENT_NAME.format(width)} ...", file=sys.stderr)
        students.append(measure_student(width, config, frame, setup))
    for arch in args.archs:
        print(f"measuring {TEACHER_NAME.format(arch)} ...", file=sys.stderr)
        teachers.append(measure_teacher(arch, frame, setup, args.teacher_options))
    pairs = ratios(teachers, students)
    payload = {
        "benchmark": "frame_cost", "environment": env, "setup": setup.describe(),
        "args": vars(args) | {"out": args.out.name}, "frame": {"width": args.width, "height": args.height},
        "students": students, "teachers": teachers, "ratios": pairs, "target": flop_target(pairs),
        "cost_model_ms": asdict(config.cost_model),
    }
    write_results(args.out, payload)
    print_report(payload, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
