"""How many live cameras one machine sustains: drops and capture-to-result latency of ``LiveStudent``.

For each camera count N in ``--cameras`` (default 1 2 4 8) N stand-in cameras are started, each an
``odist publish synthetic:SCENARIO udp://127.0.0.1:PORT`` subprocess (scenarios cycled, seed = camera
number, default 640x360 at 10 fps, H.264 in MPEG-TS; each renders ``--loop-frames`` frames, default 50,
then loops them, so rendering is over before the measurement). Then N live students read them:

* ``threads`` mode (default): N ``LiveStudent`` objects in this process, each ``run`` in its own thread
  (one torch thread each: config ``threads=1``). They share the GIL; torch and FFmpeg release it while
  they compute.
* ``ray`` mode: ``run_live`` on a CAMERAS.yaml of the N cameras, one ``LiveCamera`` actor each on a local
  Ray of ``--ray-cpus`` CPUs (default 2), each asking for ``--student-cpus`` (default ray CPUs / N, so
  every N fits).

The teacher is defined here and is cheap, so the numbers are about the student path: it labels bright
pixels (luma > ``--luma-threshold``) as class 1 and sleeps ``--teacher-ms`` (default 300, the paper's
Mask R-CNN time) per call to stand in for a remote teacher; each frame is charged ``teacher.charged_ms``
/ ``teacher.charged_gflops`` (300 ms / 520 GFLOPs). Labels arrive asynchronously, as from a real pool.

Every run waits until all cameras are running, warms up ``--warmup`` seconds (default 10), then measures
``--seconds`` (default 30). Reported per N, over the measured window only:

* fps in / fps out per camera (mean): frames offered by the source at the target rate / frames processed;
* drop %: all cameras' dropped frames / (processed + dropped); a drop is a frame the student was too
  slow for (``LiveSource`` keeps only the newest frame);
* latency p50 / p99: capture (decode) to result, per camera; the mean and the max over cameras;
* keyframes per processed frame, teacher errors, and whether drops < ``--target-drop`` (1%).

Threads mode reads the counters of each source and session at the window's start and end and gives each
student a fresh latency window at its start. Ray mode can only read the cameras' published status (once
a second): counters are differences of those, fps in = (processed + dropped) / window, and the latency
percentiles are the status's own (the last 1000 frames, so they include warm-up frames).

Larger N are skipped once a run drops more than ``--stop-drop`` (5%) of its frames, unless
``--keep-going``. Results go to ``bench/results/live_capacity.json`` (rewritten after every run).

Run (640x360, 10 fps, student width 1.0, 1 2 4 8 cameras)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/live_capacity.py

Both widths, both modes::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/live_capacity.py \\
        --student-width 1.0 0.5 --modes threads ray

Tiny check::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/live_capacity.py \\
        --cameras 1 --width 160 --height 90 --seconds 5 --warmup 3
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, set_threads, write_results

from odist.config import OdistConfig, load_config
from odist.live.cameras import CameraSpec
from odist.live.status import CameraStatus, LatencyWindow
from odist.live.student import LiveOptions, LiveStudent
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.frame import Frame
from odist.video.synthetic import SCENARIOS

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
PUBLISH = "import sys; from odist.cli import main; sys.exit(main(sys.argv[1:]))"


class LuminanceTeacher(Teacher):
    """Bright pixels are class 1, the rest background; sleeps ``sleep_s`` per call like a remote teacher."""

    name = "luminance"

    def __init__(self, class_names: Sequence[str], sleep_s: float, threshold: float, charged_ms: float,
                 charged_gflops: float) -> None:
        super().__init__(class_names)
        self.sleep_s, self.threshold = sleep_s, threshold
        self.charged_ms, self.charged_gflops = charged_ms, charged_gflops

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        labels = [Labels(classes=((frame.image.astype(np.float32) @ LUMA) > 255 * self.threshold).astype(np.uint8))
                  for frame in frames]
        time.sleep(self.sleep_s)
        return TeacherResult(labels=labels, seconds=len(frames) * self.charged_ms / 1000.0,
                             gflops=len(frames) * self.charged_gflops)

    def gflops_per_frame(self, height: int, width: int) -> float:
        return float(self.charged_gflops)


class LuminanceTeacherFactory:
    """Builds a ``LuminanceTeacher`` from a camera's config (picklable, for the Ray camera actors)."""

    def __init__(self, sleep_s: float, threshold: float) -> None:
        self.sleep_s, self.threshold = sleep_s, threshold

    def __call__(self, config: OdistConfig) -> Teacher:
        return LuminanceTeacher(config.classes, self.sleep_s, self.threshold, config.teacher.charged_ms,
                                config.teacher.charged_gflops)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cameras", nargs="+", type=int, default=[1, 2, 4, 8], metavar="N",
                   help="camera counts to measure, in order (default 1 2 4 8)")
    p.add_argument("--modes", nargs="+", choices=["threads", "ray"], default=["threads"],
                   help="threads: students in threads of this process (default); ray: run_live's camera actors")
    p.add_argument("--student-width", nargs="+", type=float, default=[1.0], metavar="W",
                   help="JITNet width multipliers to measure (default 1.0)")
    p.add_argument("--width", type=int, default=640, help="camera frame width (default 640)")
    p.add_argument("--height", type=int, default=360, help="camera frame height (default 360)")
    p.add_argument("--fps", type=float, default=10.0, help="camera frame rate, sent and processed (default 10)")
    p.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run (default 30)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds after every camera runs, before measuring")
    p.add_argument("--teacher-ms", type=float, default=300.0, help="teacher sleep per call, ms (default 300)")
    p.add_argument("--luma-threshold", type=float, default=0.6,
                   help="the teacher's class-1 luma threshold, 0..1 (default 0.6)")
    p.add_argument("--loop-frames", type=int, default=50, help="frames each publisher renders, then loops (50)")
    p.add_argument("--base-port", type=int, default=17000, help="first UDP port (default 17000)")
    p.add_argument("--commit-every", type=float, default=30.0, help="seconds between commits (default 30)")
    p.add_argument("--ray-cpus", type=int, default=2, help="ray mode: CPUs of the local Ray (default 2)")
    p.add_argument("--student-cpus", type=float, default=None,
                   help="ray mode: CPUs each camera actor asks for (default ray CPUs / N)")
    p.add_argument("--target-drop", type=float, default=0.01, help="sustained means drops below this (0.01)")
    p.add_argument("--stop-drop", type=float, default=0.05,
                   help="skip larger N once a run drops more than this (default 0.05)")
    p.add_argument("--keep-going", action="store_true", help="measure every N even after --stop-drop is passed")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, applied after the defaults here (repeatable)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "live_capacity.json", help="JSON results path")
    args = p.parse_args(argv)
    if any(n < 1 for n in args.cameras) or args.seconds <= 0 or args.warmup < 0 or args.fps <= 0:
        p.error("camera counts, --seconds and --fps must be positive, --warmup 0 or more")
    return args


def bench_config(args: argparse.Namespace, student_width: float) -> OdistConfig:
    return load_config(overrides=[f"student.width={student_width}", "threads=1", "device=cpu",
                                  "teacher.name=luminance", *args.overrides], environ={})


@contextlib.contextmanager
def publishers(n: int, first_port: int, args: argparse.Namespace) -> Iterator[list[str]]:
    """N ``odist publish`` subprocesses on distinct UDP ports; yields their URLs, stops them at the end."""
    scenarios = list(SCENARIOS)
    urls = [f"udp://127.0.0.1:{first_port + i}" for i in range(n)]
    procs = [subprocess.Popen([sys.executable, "-c", PUBLISH, "publish", f"synthetic:{scenarios[i % len(scenarios)]}",
                               url, "--width", str(args.width), "--height", str(args.height), "--fps", f"{args.fps:g}",
                               "--frames", str(args.loop_frames), "--seed", str(i)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
             for i, url in enumerate(urls)]
    try:
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def camera_specs(urls: list[str]) -> list[CameraSpec]:
    return [CameraSpec(f"cam{i:02d}", url) for i, url in enumerate(urls)]


def wait_running(statuses: Any, timeout: float) -> float:
    """Poll ``statuses()`` until every camera runs; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        current = statuses()
        if current and all(s.state == "running" for s in current):
            return time.monotonic() - started
        if any(s.state == "failed" for s in current):
            raise RuntimeError(f"a camera failed: {[s.error for s in current if s.error]}")
        time.sleep(0.2)
    raise RuntimeError(f"not every camera was running after {timeout:g} s: {[s.state for s in statuses()]}")


def counters(student: LiveStudent) -> dict[str, int]:
    """The live counters of one running student (its source's and its session's)."""
    session = student.session
    assert session is not None
    stats = session.source.stats
    return {"offered": stats.decoded - stats.sampled_out, "processed": session.frames_this_run,
            "dropped": stats.dropped, "keyframes": session.keyframes.keyframes,
            "teacher_errors": session.keyframes.teacher_errors, "reconnects": stats.reconnects}


def run_threads(urls: list[str], config: OdistConfig, options: LiveOptions, out: str,
                args: argparse.Namespace) -> tuple[list[dict[str, Any]], float, float]:
    """N students in threads of this process: per-camera window numbers, the window and the start-up seconds."""
    students = [LiveStudent(camera, out, config,
                            LuminanceTeacher(config.classes, args.teacher_ms / 1000.0, args.luma_threshold,
                                             config.teacher.charged_ms, config.teacher.charged_gflops), options)
                for camera in camera_specs(urls)]
    stop = threading.Event()
    finals: list[CameraStatus | None] = [None] * len(students)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            finals[i] = students[i].run(stop)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"student {i}", daemon=True) for i in range(len(students))]
    for thread in threads:
        thread.start()
    try:
        startup = wait_running(lambda: [s.status() for s in students], timeout=60.0 + 5 * len(students))
        time.sleep(args.warmup)
        windows = [LatencyWindow(size=1_000_000) for _ in students]
        before = [counters(s) for s in students]
        for student, window in zip(students, windows, strict=True):
            student.latency = window
        t0 = time.monotonic()
        time.sleep(args.seconds)
        after = [counters(s) for s in students]
        seconds = time.monotonic() - t0
        latency = [(w.percentile(50), w.percentile(99)) for w in windows]
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    if errors:
        raise errors[0]
    cams = []
    for student, b, a, (p50, p99) in zip(students, before, after, latency, strict=True):
        d = {key: a[key] - b[key] for key in a}
        cams.append({"camera": student.camera.id, "url": student.camera.url, **d,
                     "fps_in": d["offered"] / seconds, "fps_out": d["processed"] / seconds,
                     "latency_p50_ms": None if p50 is None else 1000 * p50,
                     "latency_p99_ms": None if p99 is None else 1000 * p99})
    return cams, seconds, startup


def run_ray(urls: list[str], config: OdistConfig, options: LiveOptions, out: str, folder: Path,
            args: argparse.Namespace) -> tuple[list[dict[str, Any]], float, float]:
    """N camera actors through ``run_live``: per-camera window numbers from their published statuses."""
    from odist.live.supervisor import LiveJob, run_live

    cameras = camera_specs(urls)
    path = folder / "CAMERAS.yaml"
    path.write_text(yaml.safe_dump([{"id": c.id, "url": c.url, "fps": args.fps} for c in cameras]))
    cpus = args.student_cpus if args.student_cpus is not None else args.ray_cpus / len(cameras)
    job = LiveJob(out=out, config=config, options=options, student_cpus=cpus,
                  teacher_factory=LuminanceTeacherFactory(args.teacher_ms / 1000.0, args.luma_threshold))
    stop = threading.Event()
    started = time.monotonic()
    marks: dict[str, Any] = {}

    def on_status(statuses: list[CameraStatus]) -> None:
        now = time.monotonic()
        if "running" not in marks:
            if len(statuses) == len(cameras) and all(s.state == "running" for s in statuses):
                marks["running"] = now
            return
        if "t0" not in marks and now >= marks["running"] + args.warmup:
            marks["t0"], marks["before"] = now, {s.camera: s for s in statuses}
        elif "t0" in marks and "t1" not in marks and now >= marks["t0"] + args.seconds:
            marks["t1"] = now
            stop.set()

    final = run_live(path, job, duration_s=120.0 + 10 * len(cameras) + args.warmup + args.seconds, stop=stop,
                     on_status=on_status, status_every_s=1.0)
    if "t1" not in marks:
        raise RuntimeError(f"the cameras did not run long enough to measure: {[(s.state, s.error) for s in final]}")
    seconds = marks["t1"] - marks["t0"]
    cams = []
    for s in final:
        b = marks["before"][s.camera]
        d = {"processed": s.frames_this_run - b.frames_this_run, "dropped": s.dropped - b.dropped,
             "keyframes": s.keyframes - b.keyframes, "teacher_errors": s.teacher_errors - b.teacher_errors,
             "reconnects": s.reconnects - b.reconnects}
        d["offered"] = d["processed"] + d["dropped"]
        cams.append({"camera": s.camera, "url": next(c.url for c in cameras if c.id == s.camera), **d,
                     "fps_in": d["offered"] / seconds, "fps_out": d["processed"] / seconds,
                     "latency_p50_ms": s.latency_p50_ms, "latency_p99_ms": s.latency_p99_ms,
                     "state": s.state, "error": s.error})
    return cams, seconds, marks["running"] - started


def summarise(cams: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    processed = sum(c["processed"] for c in cams)
    dropped = sum(c["dropped"] for c in cams)
    drop = dropped / (processed + dropped) if processed + dropped else 1.0

    def stat(key: str, how: Any) -> float | None:
        values = [c[key] for c in cams if c[key] is not None]
        return float(how(values)) if values else None

    return {"processed": processed, "dropped": dropped, "drop_fraction": drop,
            "fps_in_mean": stat("fps_in", np.mean), "fps_out_mean": stat("fps_out", np.mean),
            "latency_p50_ms_mean": stat("latency_p50_ms", np.mean), "latency_p50_ms_max": stat("latency_p50_ms", max),
            "latency_p99_ms_mean": stat("latency_p99_ms", np.mean), "latency_p99_ms_max": stat("latency_p99_ms", max),
            "keyframes": sum(c["keyframes"] for c in cams),
            "keyframes_per_frame": sum(c["keyframes"] for c in cams) / processed if processed else 0.0,
            "teacher_errors": sum(c["teacher_errors"] for c in cams),
            "reconnects": sum(c["reconnects"] for c in cams),
            "sustained": drop < args.target_drop}


def measure(mode: str, student_width: float, n: int, first_port: int, args: argparse.Namespace) -> dict[str, Any]:
    config = bench_config(args, student_width)
    options = LiveOptions(fps=args.fps, commit_every_s=args.commit_every, open_timeout_s=10.0, read_timeout_s=10.0)
    load_before = os.getloadavg()
    print(f"{mode}, student width {student_width:g}, {n} camera(s) ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="live-capacity-") as tmp, publishers(n, first_port, args) as urls:
        out = str(Path(tmp) / "out")
        if mode == "threads":
            cams, seconds, startup = run_threads(urls, config, options, out, args)
        else:
            cams, seconds, startup = run_ray(urls, config, options, out, Path(tmp), args)
    summary = summarise(cams, args)
    print(f"{mode}, student width {student_width:g}, {n} camera(s): drops {100 * summary['drop_fraction']:.1f}%, "
          f"fps out {fmt(summary['fps_out_mean'], 2)}/camera, p99 max {fmt(summary['latency_p99_ms_max'], 0)} ms",
          file=sys.stderr)
    return {"mode": mode, "student_width": student_width, "cameras": n, "window_seconds": seconds,
            "startup_seconds": startup, "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
            "student_cpus": (args.student_cpus if args.student_cpus is not None else args.ray_cpus / n)
            if mode == "ray" else None, **summary, "per_camera": cams}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(1)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "live_capacity", "environment": env,
                               "args": vars(args) | {"out": args.out.name},
                               "configs": {str(w): bench_config(args, w).to_dict() for w in args.student_width},
                               "runs": []}
    print(f"{describe_environment(env)}; {args.width}x{args.height} at {args.fps:g} fps, "
          f"{args.seconds:g} s measured after {args.warmup:g} s warm-up", file=sys.stderr)
    port = args.base_port
    ray_started = False
    try:
        for mode in args.modes:
            if mode == "ray" and not ray_started:
                import ray

                ray.init(num_cpus=args.ray_cpus, include_dashboard=False, logging_level=logging.WARNING)
                ray_started = True
            for width in args.student_width:
                for n in args.cameras:
                    run = measure(mode, width, n, port, args)
                    port += n
                    payload["runs"].append(run)
                    write_results(args.out, payload)
                    if run["drop_fraction"] > args.stop_drop and not args.keep_going:
                        print(f"drops above {100 * args.stop_drop:g}%: larger camera counts skipped", file=sys.stderr)
                        break
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    print_report(payload, args)
    return 0


def capacity(runs: list[dict[str, Any]]) -> list[tuple[str, float, int]]:
    """(mode, student width, the most cameras measured with drops under the target; 0 if none)."""
    keys = list(dict.fromkeys((r["mode"], r["student_width"]) for r in runs))
    return [(mode, width, max([r["cameras"] for r in runs if (r["mode"], r["student_width"]) == (mode, width)
                               and r["sustained"]], default=0)) for mode, width in keys]


def results_table(runs: list[dict[str, Any]]) -> str:
    headers = ["mode", "student width", "cameras", "fps in / camera", "fps out / camera", "drops %",
               "p50 ms mean", "p50 ms max", "p99 ms mean", "p99 ms max", "keyframes / frame", "drops < 1%"]
    rows = [[r["mode"], f"{r['student_width']:g}", str(r["cameras"]), fmt(r["fps_in_mean"], 2),
             fmt(r["fps_out_mean"], 2), fmt(100 * r["drop_fraction"], 1), fmt(r["latency_p50_ms_mean"], 0),
             fmt(r["latency_p50_ms_max"], 0), fmt(r["latency_p99_ms_mean"], 0), fmt(r["latency_p99_ms_max"], 0),
             fmt(r["keyframes_per_frame"], 3), "yes" if r["sustained"] else "no"] for r in runs]
    return markdown_table(headers, rows)


def print_report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    env = payload["environment"]
    print("# Live camera capacity\n")
    print(f"{describe_environment(env)}. {args.width}x{args.height} synthetic cameras at {args.fps:g} fps "
          f"(H.264 over loopback UDP, one `odist publish` process each), one torch thread per student, teacher "
          f"labels by luminance after a {args.teacher_ms:g} ms sleep; {args.seconds:g} s measured after "
          f"{args.warmup:g} s warm-up; overrides: {', '.join(args.overrides) or 'none'}. Load average before "
          "the runs: " + ", ".join(f"{r['loadavg_before'][0]:.1f}" for r in payload["runs"]) + ".\n")
    print(results_table(payload["runs"]))
    print()
    for mode, width, n in capacity(payload["runs"]):
        print(f"- {mode}, student width {width:g}: {n} camera(s) sustained with drops < "
              f"{100 * args.target_drop:g}%")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
