"""``odist plan``: size a cluster for N cameras at F frames/s on one GPU type, and print the values to deploy with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from odist.errors import ConfigError
from odist.plan.api import plan
from odist.plan.capacity import DEFAULT_HEADROOM, DEFAULT_STUDENT_GPUS, DEFAULT_TEACHER_BATCH, Plan


def add_plan_command(commands: argparse._SubParsersAction) -> None:
    """Register ``odist plan`` on the CLI's subcommands."""
    p = commands.add_parser(
        "plan", help="size a GPU cluster for N cameras: student shares, teacher replicas, GPUs",
        description="Work out the GPUs a fleet of cameras needs on one GPU type: each student's GPU time and how "
                    "many share a GPU, the keyframes the teacher pool labels and its replicas, and the values "
                    "for `odist run` and the cluster configs in cluster/. Costs come from bench/results/gpu_TYPE.json "
                    "when measured, otherwise from reference estimates (each plan says which).")
    p.add_argument("--cameras", type=int, required=True, help="cameras (streams processed at once)")
    p.add_argument("--fps", type=float, required=True, help="frames per second of each camera")
    p.add_argument("--gpu", required=True, metavar="TYPE", help="GPU type, e.g. a10g, l4, t4, h100")
    p.add_argument("--resolution", default="1280x720", metavar="WxH", help="frame size (default 1280x720)")
    p.add_argument("--keyframe-rate", type=float, default=None, metavar="R",
                   help="keyframes per frame (default: measured adaptive schedule, else the paper's 1/8)")
    p.add_argument("--student-gpus", type=float, default=DEFAULT_STUDENT_GPUS,
                   help=f"GPU share per student as in `odist run` (default {DEFAULT_STUDENT_GPUS:g})")
    p.add_argument("--teacher-batch", type=int, default=DEFAULT_TEACHER_BATCH,
                   help=f"largest teacher batch (default {DEFAULT_TEACHER_BATCH})")
    p.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM,
                   help=f"capacity over demand (default {DEFAULT_HEADROOM:g}, i.e. 80%% utilisation)")
    p.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per worker node or pod (default 1)")
    p.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="folder of benchmark results (default: $ODIST_RESULTS, else this checkout's "
                        "bench/results; an installed odist has none, so pass the folder here)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(handler=_run_plan)


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``; ``ConfigError`` otherwise."""
    width, sep, height = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError(text)
        return int(width), int(height)
    except ValueError:
        raise ConfigError(f"--resolution {text!r} is not WIDTHxHEIGHT", "write e.g. --resolution 1280x720") from None


def plan_from_args(args: argparse.Namespace) -> Plan:
    """The plan the command's arguments ask for."""
    width, height = parse_resolution(args.resolution)
    return plan(cameras=args.cameras, fps=args.fps, gpu=args.gpu, width=width, height=height,
                keyframe_rate=args.keyframe_rate, student_gpus=args.student_gpus, teacher_batch=args.teacher_batch,
                headroom=args.headroom, gpus_per_node=args.gpus_per_node, results=args.results)


def _run_plan(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    print(json.dumps(plan.to_dict(), indent=2) if args.json else describe(plan))
    return 0


def describe(plan: Plan) -> str:
    """The plan as a readable table, then the values to use."""
    r, s, t, w = plan.request, plan.students, plan.teacher, plan.workload
    rows = [
        ("students", ""),
        ("GPU time per frame", f"{s.ms_per_frame:.1f} ms = {s.inference_ms:.1f} ms inference + "
                               f"{w.updates_per_frame:.2f} updates x {s.update_ms:.1f} ms"),
        ("GPU-s/s per camera", f"{s.gpu_seconds_per_second:.3f} (all cameras {s.total_gpu_seconds_per_second:.2f}; "
                               f"{s.peak_gpu_seconds_per_second:.3f} per camera at the peak keyframe rate)"),
        ("students per GPU", f"{s.per_gpu}, limited by {s.limited_by} (compute {s.fit_compute}, "
                             f"memory {s.fit_memory} at {s.memory_gb:.1f} GB each, share {s.fit_share})"),
        ("student GPUs", f"{s.gpus}"),
        ("teacher pool", ""),
        ("keyframes to label", f"{t.frames_per_second:.1f} frames/s (peak {t.peak_frames_per_second:.1f})"),
        ("per replica", f"{t.replica_frames_per_second:.1f} frames/s at batch {t.batch}, "
                        f"{t.gpus_per_replica:g} GPU, {t.memory_gb:.1f} GB"),
        ("replicas", f"{t.min_replicas} to {t.max_replicas}"),
        ("total", ""),
        ("GPUs", f"{plan.min_gpus} to {plan.max_gpus}"),
        (f"nodes of {r.gpus_per_node} GPU", f"{plan.min_nodes} to {plan.max_nodes}"),
    ]
    width = max(len(label) for label, _ in rows) + 4
    lines = [f"plan: {r.cameras} cameras at {r.fps:g} frames/s, {r.width}x{r.height}, on {plan.profile.label}, "
             f"headroom {r.headroom:g}",
             f"GPU costs: {plan.profile.source}",
             f"keyframes: {w.keyframe_rate:.4f} per frame (peak {w.peak_keyframe_rate:.4f}), "
             f"{w.updates_per_keyframe:.2f} updates each; {w.source}", ""]
    lines += [label if not value else f"  {label:<{width - 2}}{value}" for label, value in rows]
    values = plan.values()
    lines += ["", "use:",
              f"  odist run MANIFEST --out URI {plan.run_flags()} "
              "--teacher maskrcnn --set teacher.weights=torchvision",
              "  cluster/kuberay/raycluster.yaml, worker group gpu: "
              + ", ".join(f"{k} {v}" for k, v in values["kuberay_gpu_group"].items()),
              "  cluster/aws/odist-cluster.yaml, node type gpu_worker: "
              + ", ".join(f"{k} {v}" for k, v in values["ray_up_gpu_workers"].items())
              + f"; top-level max_workers {plan.max_nodes}"]
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)
