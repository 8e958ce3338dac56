"""Decoding an archive from object storage against decoding it from local disk.

``odist synth``'s archive (one camera per scenario, 640x360 by default) is written to a local folder and
uploaded to a loopback S3 endpoint (moto's server, in a process of its own so that serving does not share
this process's interpreter). Every video is then decoded to RGB frames as a stream reads them
(``ArchiveSource``), alternately from the local file and from its ``s3://`` object, ``--repeats`` times;
the median of each is reported: frames/s, the cost of a frame read from S3 over one read from disk, and the
bytes and GETs fetched per frame (the probe's reads included).

Target: reading from S3 costs at most 10% more than reading from local disk at 640x360.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, write_results

from odist.cli import main as odist_main
from odist.storage.objectstore import open_store
from odist.video.archive import ArchiveSource
from odist.video.synthetic import SCENARIOS

BUCKET = "odist-bench"
TARGET = 1.10  # S3 seconds per frame / local seconds per frame


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS),
                   help="one camera per scenario (default: all)")
    p.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    p.add_argument("--height", type=int, default=360, help="frame height (default 360)")
    p.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    p.add_argument("--repeats", type=int, default=3, help="decodes of each video from each place (default 3)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "archive_read.json", help="JSON results path")
    args = p.parse_args(argv)
    if min(args.frames, args.repeats) < 1:
        p.error("--frames and --repeats must be at least 1")
    return args


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 in a child process, with one bucket; yields its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    settings = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    before = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        _wait_for_port(port, server)
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _wait_for_port(port: int, server: subprocess.Popen, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"moto's S3 server exited with {server.returncode} (pip install 'moto[server]')")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise SystemExit("moto's S3 server did not start within 60 s")


def make_archive(folder: Path, args: argparse.Namespace) -> list[str]:
    """``odist synth``'s archive in ``folder``; the stream ids."""
    code = odist_main(["synth", str(folder), "--scenarios", *args.scenarios, "--cameras", "1", "--frames",
                       str(args.frames), "--width", str(args.width), "--height", str(args.height)])
    if code != 0:
        raise SystemExit("odist synth failed")
    return sorted(p.parent.name for p in folder.glob("*/video.mp4"))


def decode(uri: str) -> dict[str, Any]:
    """Open and decode every frame of ``uri`` to RGB; seconds, frames and (for S3) what was fetched."""
    start = time.perf_counter()
    source = ArchiveSource(uri)
    frames = sum(1 for _ in source)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": frames, "read": source.read_stats()}


def measure(stream: str, local: Path, remote: str, repeats: int) -> dict[str, Any]:
    """Alternate local and S3 decodes of one video; medians and the bytes fetched."""
    runs: dict[str, list[dict[str, Any]]] = {"local": [], "s3": []}
    for repeat in range(repeats):
        order = ("local", "s3") if repeat % 2 == 0 else ("s3", "local")
        for place in order:
            runs[place].append(decode(str(local) if place == "local" else remote))
    frames = runs["local"][0]["frames"]
    if any(run["frames"] != frames for place in runs.values() for run in place):
        raise SystemExit(f"{stream}: the frame counts of local and S3 decodes differ")
    local_s = statistics.median(run["seconds"] for run in runs["local"])
    s3_s = statistics.median(run["seconds"] for run in runs["s3"])
    read = runs["s3"][0]["read"]
    size = local.stat().st_size
    return {"stream": stream, "frames": frames, "object_bytes": size, "local_seconds": local_s, "s3_seconds": s3_s,
            "local_fps": frames / local_s, "s3_fps": frames / s3_s, "s3_cost_ratio": s3_s / local_s,
            "bytes_fetched_per_frame": read["bytes"] / frames, "object_bytes_per_frame": size / frames,
            "gets": read["requests"], "retries": read["retries"],
            "local_seconds_all": [run["seconds"] for run in runs["local"]],
            "s3_seconds_all": [run["seconds"] for run in runs["s3"]]}


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    print("# Decoding an archive from S3 against local disk\n")
    print(f"{describe_environment(payload['environment'])}. `odist synth` archive, {args.width}x{args.height}, "
          f"{args.frames} frames per video, decoded to RGB by `ArchiveSource`; median of {args.repeats} decodes "
          "from each place, alternated; S3 is moto's server on loopback in its own process. cost = S3 s/frame "
          "over local s/frame; fetched = bytes received per decoded frame (probe and decode).\n")
    headers = ["stream", "frames", "local frames/s", "S3 frames/s", "S3 cost", "fetched B/frame", "object B/frame",
               "GETs"]
    rows = [[r["stream"], str(r["frames"]), fmt(r["local_fps"], 0), fmt(r["s3_fps"], 0),
             fmt(r["s3_cost_ratio"], 3, "x"), fmt(r["bytes_fetched_per_frame"], 0),
             fmt(r["object_bytes_per_frame"], 0), str(r["gets"])] for r in payload["runs"]]
    total = payload["total"]
    rows.append(["all", str(total["frames"]), fmt(total["local_fps"], 0), fmt(total["s3_fps"], 0),
                 fmt(total["s3_cost_ratio"], 3, "x"), fmt(total["bytes_fetched_per_frame"], 0),
                 fmt(total["object_bytes_per_frame"], 0), str(total["gets"])])
    print(markdown_table(headers, rows))
    target = payload["target"]
    print(f"\n## Checks\n\n- {target['status']}: {target['target']} ({target['detail']})")
    print(f"\nJSON: {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "archive_read", "environment": env,
                               "args": vars(args) | {"out": args.out.name}, "runs": []}
    folder = Path(tempfile.mkdtemp(prefix="odist-archive-read-"))
    try:
        streams = make_archive(folder / "archive", args)
        with moto_server():
            store = open_store(f"s3://{BUCKET}/archive")
            for stream in streams:
                store.put(f"{stream}/video.mp4", (folder / "archive" / stream / "video.mp4").read_bytes())
            for stream in streams:
                print(f"decoding {stream}", file=sys.stderr)
                payload["runs"].append(measure(stream, folder / "archive" / stream / "video.mp4",
                                               f"s3://{BUCKET}/archive/{stream}/video.mp4", args.repeats))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    runs = payload["runs"]
    frames = sum(r["frames"] for r in runs)
    local_s, s3_s = sum(r["local_seconds"] for r in runs), sum(r["s3_seconds"] for r in runs)
    fetched = sum(r["bytes_fetched_per_frame"] * r["frames"] for r in runs)
    payload["total"] = {"frames": frames, "local_fps": frames / local_s, "s3_fps": frames / s3_s,
                        "s3_cost_ratio": s3_s / local_s, "bytes_fetched_per_frame": fetched / frames,
                        "object_bytes_per_frame": sum(r["object_bytes"] for r in runs) / frames,
                        "gets": sum(r["gets"] for r in runs)}
    ratio = payload["total"]["s3_cost_ratio"]
    payload["target"] = {"target": f"S3 costs at most {TARGET - 1:.0%} more per frame than local disk",
                         "status": "PASS" if ratio <= TARGET else "MISS",
                         "detail": f"{ratio:.3f}x over {len(runs)} videos at {args.width}x{args.height}"}
    write_results(args.out, payload)
    report(payload, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
