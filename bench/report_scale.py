"""How ``odist report`` scales: 10,000 streams' committed records, reported as table, Parquet and HTML.

The run is generated through the normal write path (``StreamArea.commit_segment`` with records from
``parquet_bytes``, a tiny mask and checkpoint object, ``stream.json``, and ``finish`` or ``fail``), in
parallel processes; then each format is produced by ``python -m odist.cli report`` in a fresh process,
timed end to end (interpreter start included) with its peak RSS. Targets: < 30 s and < 2 GB each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from _common import RESULTS_DIR, describe_environment, environment, markdown_table, write_results

from odist.storage.layout import StreamArea, dumps
from odist.storage.objectstore import open_store
from odist.storage.schema import RECORD_SCHEMA, parquet_bytes

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 2048.0
SEGMENT = 256
FORMATS = ("table", "parquet", "html")


def stream_records(rng: np.random.Generator, frames: int, fps: float, start: float) -> dict[str, np.ndarray]:
    """Plausible per-frame records: keyframes every 8-64 frames, teacher time on them, scores on every frame."""
    index = np.arange(frames)
    stride = int(rng.choice([8, 16, 32, 64]))
    key = index % stride == 0
    return {
        "frame_index": index, "timestamp": start + index / fps, "keyframe": key,
        "updates": np.where(key, rng.integers(0, 9, frames), 0), "stride": np.full(frames, stride),
        "keyframe_accuracy": np.where(key, rng.uniform(0.5, 1.0, frames), np.nan),
        "student_seconds": np.where(key, 0.03, 0.007) * rng.uniform(0.8, 1.2, frames),
        "teacher_seconds": np.where(key, 0.3, 0.0),
        "miou": rng.uniform(0.4, 0.95, frames), "miou_foreground": rng.uniform(0.2, 0.9, frames),
        "trigger": np.where(key, "ladder", None),
        **_class_columns(rng, frames, key),
    }


def _class_columns(rng: np.random.Generator, frames: int, key: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class pixel shares and object counts of 4 classes (background first), the teacher's on keyframes."""
    shares = rng.dirichlet([20.0, 1.0, 1.0, 0.3], frames).astype(np.float32)
    regions = np.concatenate([np.zeros((frames, 1), np.int32), rng.integers(0, 8, (frames, 3), np.int32)], axis=1)
    teacher_shares, teacher_regions = np.empty(frames, object), np.empty(frames, object)
    for index in np.flatnonzero(key):
        teacher_shares[index], teacher_regions[index] = shares[index].tolist(), regions[index].tolist()
    return {"class_pixels": shares, "class_regions": regions, "teacher_class_pixels": teacher_shares,
            "teacher_class_regions": teacher_regions}


def write_stream(root: str, sid: str, seed: int, min_frames: int, max_frames: int) -> int:
    """One stream through the commit protocol: done (96%), partial (3%: no summary) or failed (1%)."""
    rng = np.random.default_rng(seed)
    frames = int(rng.integers(min_frames, max_frames + 1))
    live = seed % 5 == 0  # every fifth camera is "live": unix timestamps
    fps = 30.0 if not live else 15.0
    cols = stream_records(rng, frames, fps, 1.78e9 + rng.uniform(0, 86400) if live else 0.0)
    area = StreamArea(open_store(root), sid)
    cost_model = {"teacher_ms": 300.0, "student_inference_ms": 7.0, "student_update_ms": 30.0}
    manifest = {"source": {"fps": fps}, "config": {"device": "cuda", "cost_model": cost_model}}
    area.store.put(area.key("stream.json"), dumps(manifest))
    names = RECORD_SCHEMA.names
    for first in range(0, frames, SEGMENT):
        last = min(first + SEGMENT, frames) - 1
        columns = [cols[name][first:last + 1].tolist() for name in names]
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
        area.commit_segment(first, last, parquet_bytes(rows, RECORD_SCHEMA), b"mask", b"checkpoint")
    fate = seed % 100
    if fate == 0:
        area.fail("generated failure")
    elif fate > 2:
        area.finish(_summary(sid, cols, rng))
    return frames


def _summary(sid: str, cols: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, Any]:
    keyframes, updates = int(cols["keyframe"].sum()), int(cols["updates"].sum())
    frames = len(cols["frame_index"])
    ledger = {"frames": frames, "keyframes": keyframes, "updates": updates, "teacher_frames": keyframes,
              "teacher_seconds": float(cols["teacher_seconds"].sum()), "teacher_gflops": 520.0 * keyframes,
              "student_inference_gflops": 10.7 * (frames - keyframes), "student_update_gflops": 32.0 * updates,
              "evaluation_teacher_frames": 0, "evaluation_teacher_seconds": 0.0}
    return {"stream_id": sid, "frames": frames, "keyframes": keyframes, "updates": updates,
            "teacher_gflops_per_frame": 520.0, "dropped_frames": int(rng.integers(0, 3)), "ledger": ledger}


def _write_chunk(args: tuple[str, list[int], int, int]) -> int:
    root, seeds, min_frames, max_frames = args
    return sum(write_stream(root, f"cam-{seed:05d}", seed, min_frames, max_frames) for seed in seeds)


def generate(root: str, streams: int, workers: int, min_frames: int, max_frames: int) -> tuple[int, float]:
    """Write the run; returns (frames, seconds taken)."""
    start = time.perf_counter()
    chunks = [(root, list(range(i, streams, workers * 8)), min_frames, max_frames) for i in range(workers * 8)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        frames = sum(pool.map(_write_chunk, chunks))
    return frames, time.perf_counter() - start


# Runs the command given as arguments and prints its wall time and peak RSS. A process started straight from
# this one (which has torch loaded) would inherit this process's peak RSS across exec; one started from this
# small wrapper reports its own.
_MEASURE = """
import json, os, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "wb") as out, open(sys.argv[2], "wb") as err:
    proc = subprocess.Popen(sys.argv[3:], stdout=out, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"wall_seconds": time.perf_counter() - start, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "exit_code": os.waitstatus_to_exitcode(status)}))
"""


def run_report(root: str, fmt: str, out_dir: Path) -> dict[str, Any]:
    """``odist report`` in a fresh process: wall seconds (start to exit) and peak RSS of that process."""
    suffix = {"table": "txt", "parquet": "parquet", "html": "html"}[fmt]
    out, log, err = out_dir / f"report.{suffix}", out_dir / f"{fmt}.out", out_dir / f"{fmt}.err"
    cmd = [sys.executable, "-m", "odist.cli", "report", root, "--format", fmt, "--out", str(out)]
    measured = json.loads(subprocess.run([sys.executable, "-c", _MEASURE, str(log), str(err), *cmd],
                                         capture_output=True, text=True, check=True).stdout)
    if measured["exit_code"] != 0:
        raise SystemExit(f"odist report --format {fmt} failed:\n{err.read_text()}")
    stdout = log.read_text().splitlines()
    return {"format": fmt, "wall_seconds": measured["wall_seconds"], "peak_rss_mb": measured["peak_rss_mb"],
            "output_bytes": sum(p.stat().st_size for p in out_dir.glob(f"report*.{suffix}")),
            "first_line": stdout[1] if fmt == "table" else stdout[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--min-frames", type=int, default=50)
    parser.add_argument("--max-frames", type=int, default=300)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="generator processes")
    parser.add_argument("--root", default=None, help="run root to write (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated run")
    parser.add_argument("--reuse", action="store_true", help="report over --root as it is, no generation")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "report_scale.json", help="JSON results path")
    args = parser.parse_args()
    root = args.root or tempfile.mkdtemp(prefix="odist-report-scale-")
    info = environment()
    print(describe_environment(info), file=sys.stderr)
    frames, gen_seconds = (0, 0.0) if args.reuse else generate(root, args.streams, args.workers, args.min_frames,
                                                                  args.max_frames)
    if not args.reuse:
        print(f"generated {args.streams} streams, {frames} frames in {gen_seconds:.1f} s", file=sys.stderr)
    try:
        with tempfile.TemporaryDirectory() as out_dir:
            results = [run_report(root, fmt, Path(out_dir)) for fmt in FORMATS]
            totals = pq.read_table(Path(out_dir) / "report-totals.parquet").to_pylist()[0]
    finally:
        if not args.keep and not args.reuse:
            shutil.rmtree(root, ignore_errors=True)
    if frames and totals["frames"] != frames:
        raise SystemExit(f"the report counted {totals['frames']} frames, {frames} were committed")
    _print(results, totals)
    write_results(args.out, {
        "environment": info, "streams": totals["streams"], "frames": totals["frames"], "generate_seconds": gen_seconds,
        "report_totals": totals,
        "min_frames": args.min_frames, "max_frames": args.max_frames, "results": results,
        "targets": {"wall_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB},
        "met": all(r["wall_seconds"] < TARGET_SECONDS and r["peak_rss_mb"] < TARGET_RSS_MB for r in results)})
    print(f"\nJSON: {args.out}")


def _print(results: list[dict[str, Any]], totals: dict[str, Any]) -> None:
    rows = [[r["format"], f"{r['wall_seconds']:.1f}", f"{r['peak_rss_mb']:.0f}", f"{r['output_bytes'] / 1e6:.2f}"]
            for r in results]
    print(f"{totals['streams']:,} streams ({totals['done']:,} done, {totals['partial']} partial, "
          f"{totals['failed']} failed), {totals['frames']:,} committed frames\n")
    print(markdown_table(["format", "wall s", "peak RSS MB", "output MB"], rows))
    met = all(r["wall_seconds"] < TARGET_SECONDS and r["peak_rss_mb"] < TARGET_RSS_MB for r in results)
    print(f"\ntargets (< {TARGET_SECONDS:.0f} s, < {TARGET_RSS_MB:.0f} MB per format): {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
