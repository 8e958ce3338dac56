"""Everything a GPU machine should do, in one call of at most 8 minutes: install, versions, benchmarks, CUDA tests.

Steps, in order, each in its own process with its own timeout (and all within ``--budget`` seconds: a step
never starts with less time left than the steps after it are promised), a failure in one never stopping the
others:

1. ``install``: ``pip install -e .`` (``--no-deps`` when torch and the other requirements already import, so a
   preinstalled CUDA torch is kept and nothing is downloaded);
2. ``versions``: torch, CUDA, cuDNN, the card (name, compute capability, memory), the driver (``nvidia-smi``);
   fails when ``--device cuda`` and torch sees no GPU;
3. ``frame_cost-fp32``, ``frame_cost-channels_last``, ``frame_cost-bf16``, ``frame_cost-bf16-channels_last``:
   ``bench/frame_cost.py --device cuda`` (JITNet against Mask R-CNN) in each precision and memory format;
4. ``gpu_pipeline``: ``bench/gpu_pipeline.py --quick`` (students per GPU, teacher frames/s, speed-up);
5. ``cuda_tests``: the tests marked ``cuda`` (the performance switches, the memory-share guard, 8 students at
   ``--student-gpus 0.125`` through ``odist run``).

Everything goes under ``--out`` (default ``$OUT``, else a new temporary folder): ``logs/STEP.log`` (the step's
command, output and exit status), ``versions.json``, each benchmark's JSON, ``cuda_tests.xml`` (JUnit) and
``summary.json``; a Markdown table of the steps ends stdout. Exit status 0 when every step passed, else 1.

``--device cpu`` is the dry run: every step at tiny sizes on the CPU (``pip install --dry-run``, the CUDA
tests collected and skipped), so a typo never costs GPU time; CI runs it (``tests/bench/test_gpu_run.py``).

Run (on the GPU machine, from the repository root)::

    python bench/gpu_run.py                      # results under $OUT
    python bench/gpu_run.py --out /tmp/gpu-run   # or a folder of your choice

Dry run::

    python bench/gpu_run.py --device cpu --out /tmp/gpu-run-dry
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
CUDA_TESTS = ["tests/distill/test_cuda_switches.py", "tests/fleet/test_cuda_fleet.py"]
REQUIREMENTS = ["torch", "torchvision", "numpy", "av", "PIL", "pyarrow", "yaml", "ray", "scipy", "tqdm", "pytest"]
# Mask R-CNN at a tiny resize: the dry run's teacher (the full one takes a minute per run on a CPU).
TINY_TEACHER = ("min_size=64,max_size=96,rpn_pre_nms_top_n_test=100,rpn_post_nms_top_n_test=50,"
                "box_detections_per_img=8")
FRAME_COST_VARIANTS = {"fp32": ["--amp", "none", "--no-channels-last"],
                       "channels_last": ["--amp", "none", "--channels-last"],
                       "bf16": ["--amp", "bf16", "--no-channels-last"],
                       "bf16-channels_last": ["--amp", "bf16", "--channels-last"]}

VERSIONS = r"""
import json, platform, shutil, subprocess, sys
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(), "cudnn": torch.backends.cudnn.version(),
        "cpu_threads": torch.get_num_threads()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(devices=torch.cuda.device_count(), card=p.name, capability=f"{p.major}.{p.minor}",
                memory_gib=round(p.total_memory / 1024**3, 1), bf16=torch.cuda.is_bf16_supported())
smi = shutil.which("nvidia-smi")
if smi:
    query = [smi, "--query-gpu=name,driver_version,memory.total,mig.mode.current", "--format=csv,noheader"]
    info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True).stdout.strip()
print(json.dumps(info, indent=1))
open(sys.argv[2], "w").write(json.dumps(info, indent=1) + "\n")
want_cuda = sys.argv[1] == "cuda"
if want_cuda and not torch.cuda.is_available():
    sys.exit("torch sees no CUDA GPU: install a CUDA build of torch (pip install torch --index-url "
             "https://download.pytorch.org/whl/cuXXX) or check the driver (nvidia-smi)")
"""


@dataclass
class Step:
    """One step: its command, its own time limit and the seconds the steps before it must leave it."""

    name: str
    command: list[str]
    timeout_s: float
    reserve_s: float  # the least time this step is promised out of the budget
    status: str = "not run"
    seconds: float = 0.0
    exit_code: int | None = None
    log: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                   help="cuda: the real run; cpu: the dry run at tiny sizes (default cuda)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default $OUT, else a temporary folder)")
    p.add_argument("--budget", type=float, default=470.0, help="seconds for every step together (default 470)")
    p.add_argument("--skip", nargs="*", default=[], metavar="STEP", help="steps not to run (e.g. install)")
    args = p.parse_args(argv)
    if args.budget <= 0:
        p.error("--budget must be a positive number of seconds")
    if args.out is None:
        args.out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(tempfile.mkdtemp(prefix="gpu-run-"))
    return args


def requirements_import() -> bool:
    """Whether every requirement imports already (then ``install`` adds odist alone and downloads nothing)."""
    return all(importlib.util.find_spec(name) is not None for name in REQUIREMENTS)


def plan(args: argparse.Namespace) -> list[Step]:
    """The steps of a real run (``cuda``) or of the dry run (``cpu``)."""
    py, out, dry = sys.executable, args.out, args.device == "cpu"
    install = [py, "-m", "pip", "install", "-e", str(ROOT)]
    if requirements_import():
        install[4:4] = ["--no-deps", "--no-build-isolation"]
    if dry:
        install.append("--dry-run")
    steps = [Step("install", install, 120, 20),
             Step("versions", [py, "-c", VERSIONS, args.device, str(out / "versions.json")], 60, 10)]
    sizes = (["--width", "160", "--height", "90", "--repeats", "1", "--warmup", "0", "--widths", "0.5", "--archs",
              "v1", "--threads", "1", "--teacher-options", TINY_TEACHER] if dry else
             ["--repeats", "10", "--warmup", "2"])
    for variant, flags in FRAME_COST_VARIANTS.items():
        steps.append(Step(f"frame_cost-{variant}",
                          [py, str(BENCH / "frame_cost.py"), "--device", args.device, *flags, *sizes,
                           "--out", str(out / f"frame_cost-{variant}.json")], 60, 20))
    # The dry run: gpu_pipeline's own CPU sizes (--device cpu --quick), fewer frames and teacher runs.
    tiny_pipeline = ["--threads", "1", "--frames", "8", "--warmup-frames", "1", "--batches", "1", "--teacher-amps",
                     "off", "bf16"]
    steps.append(Step("gpu_pipeline", [py, str(BENCH / "gpu_pipeline.py"), "--device", args.device, "--quick",
                                       *(tiny_pipeline if dry else []),
                                       "--out", str(out / "gpu_pipeline.json")], 200, 60))
    steps.append(Step("cuda_tests", [py, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider",
                                     f"--junitxml={out / 'cuda_tests.xml'}", *CUDA_TESTS], 180, 60))
    return [step for step in steps if step.name not in args.skip]


def run_step(step: Step, timeout_s: float, env: dict[str, str], logs: Path) -> None:
    """Run ``step`` for at most ``timeout_s``; its status, time and log."""
    log = logs / f"{step.name}.log"
    step.log = str(log)
    started = time.monotonic()
    with log.open("w") as f:
        f.write(f"$ {' '.join(step.command)}\n(timeout {timeout_s:.0f} s)\n\n")
        f.flush()
        try:
            done = subprocess.run(step.command, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=timeout_s)
            step.exit_code = done.returncode
            step.status = "passed" if done.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            step.status = "timed out"
        except OSError as exc:
            f.write(f"cannot start: {exc}\n")
            step.status = "failed"
        step.seconds = time.monotonic() - started
        f.write(f"\n[{step.status}, exit {step.exit_code}, {step.seconds:.1f} s]\n")


def describe(step: Step, out: Path) -> None:
    """What a step's output tells beyond its status: the versions, the CUDA tests' counts."""
    text = Path(step.log).read_text(errors="replace") if step.log else ""
    if step.name == "versions" and (out / "versions.json").is_file():
        with contextlib.suppress(ValueError):
            step.extra = json.loads((out / "versions.json").read_text())
    if step.name == "cuda_tests":
        tail = [line for line in text.splitlines() if " passed" in line or " skipped" in line or " failed" in line]
        if tail:
            step.extra = {"result": tail[-1].strip("= ")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    steps = plan(args)
    deadline = time.monotonic() + args.budget
    print(f"gpu_run: {len(steps)} steps on {args.device}, budget {args.budget:.0f} s, results in {args.out}",
          file=sys.stderr)
    for i, step in enumerate(steps):
        promised = sum(later.reserve_s for later in steps[i + 1:])
        timeout_s = min(step.timeout_s, deadline - time.monotonic() - promised)
        if timeout_s < min(step.reserve_s, 5.0):
            step.status = "skipped (no time left)"
            print(f"  {step.name}: {step.status}", file=sys.stderr)
            continue
        print(f"  {step.name} (up to {timeout_s:.0f} s) ...", file=sys.stderr)
        run_step(step, timeout_s, env, logs)
        describe(step, args.out)
        print(f"  {step.name}: {step.status} in {step.seconds:.1f} s", file=sys.stderr)
    summary = {"device": args.device, "budget_s": args.budget, "host": platform.node(),
               "passed": all(step.status == "passed" for step in steps), "steps": [asdict(step) for step in steps]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print_summary(steps, summary, args)
    return 0 if summary["passed"] else 1


def print_summary(steps: list[Step], summary: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"# GPU run ({args.device}{', dry run' if args.device == 'cpu' else ''})\n")
    versions = next((step.extra for step in steps if step.name == "versions" and step.extra), None)
    if versions:
        print(", ".join(f"{key} {value}" for key, value in versions.items()) + "\n")
    print("| step | status | seconds | exit | note |\n| --- | --- | ---: | ---: | --- |")
    for step in steps:
        note = step.extra.get("result", "") if step.name == "cuda_tests" else ""
        exit_code = "" if step.exit_code is None else str(step.exit_code)
        print(f"| {step.name} | {step.status} | {step.seconds:.1f} | {exit_code} | {note} |")
    print(f"\n{'every step passed' if summary['passed'] else 'NOT every step passed'}; logs and results: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
