"""Throughput of writing per-frame results through the real commit path, to a local folder and to S3.

For each synthetic scenario the ground-truth class maps of ``--frames`` frames are rendered once, before
any timing, and stand in for predicted masks (realistic shapes, edges and class mix). A per-frame record
with every ``RECORD_SCHEMA`` field is made up alongside (keyframes on a growing stride, updates, timings,
per-frame mIoU). Each backend then gets a fresh stream, written the way ``odist distill`` writes one:
``SegmentWriter`` encodes every mask (zlib), buffers ``--segment-frames`` frames, and commits each segment
through ``StreamArea`` (records and masks as zstd Parquet, a checkpoint, the commit record, then the
superseded checkpoint deleted); ``finish`` commits the last segment and the summary. The checkpoint is
``--checkpoint-mb`` MB (10^6 bytes) of random bytes per commit, about JITNet's weights plus optimizer
state. The timed span is from creating the writer to ``finish`` returning: mask encoding, Parquet
encoding and every store call, including the local backend's fsyncs. A tiny untimed stream is written
to each backend first, so one-time costs (imports, the first connection) are not in the numbers.

Backends:

* ``local``: a fresh temporary folder (``--local-dir`` picks where it is made; default the system's).
* ``s3``: a loopback S3 endpoint, moto's ``ThreadedMotoServer`` on 127.0.0.1 started by this script
  (``AWS_ENDPOINT_URL`` and dummy credentials set for the duration, a bucket created, the server stopped
  at the end). The server runs in this process and keeps objects in memory, so it shares the CPUs and
  the GIL with the writer: the numbers measure the S3 client path (HTTP, signing, checksums) on
  loopback, not a real network or a real object store.

Reported per backend and scenario: frames/s, MB/s (every byte written, checkpoints included, over the
timed seconds), commits, the share of the time spent in store calls, and the mask size per frame: the
zlib encoding, the masks Parquet object as stored, and raw uint8 (H x W bytes), with the compression
ratio of the stored size. Afterwards the stream is read back with ``read_stream_table``: the record and
mask row counts must equal ``--frames`` and the first and last masks must decode to the rendered truth,
or the script stops with an error. Target checked: stored masks >= 20x smaller than raw uint8 on every
scenario. Results go to ``bench/results/storage_throughput.json`` (rewritten after every run).

Run (full size)::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/storage_throughput.py

Tiny check::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python bench/storage_throughput.py \\
        --width 128 --height 72 --frames 40 --segment-frames 16 --checkpoint-mb 1 --scenarios static_easy
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import socket
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from _common import RESULTS_DIR, describe_environment, environment, fmt, markdown_table, write_results

from odist.storage.layout import StreamArea
from odist.storage.masks import decode_mask
from odist.storage.object_reader import ObjectInfo
from odist.storage.objectstore import ObjectStore, open_store
from odist.storage.reader import read_stream_table
from odist.storage.segments import SegmentWriter
from odist.video.synthetic import SCENARIOS, SyntheticSource

BACKENDS = ("local", "s3")
COMPRESSION_TARGET = 20.0
MB = 1e6
BUCKET = "odist-bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS),
                   help="synthetic scenarios whose truth maps are written as masks (default: all)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS),
                   help="where to write (default: local and s3)")
    p.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    p.add_argument("--height", type=int, default=360, help="frame height (default 360)")
    p.add_argument("--frames", type=int, default=300, help="frames per stream (default 300)")
    p.add_argument("--segment-frames", type=int, default=256, help="frames per committed segment (default 256)")
    p.add_argument("--checkpoint-mb", type=float, default=12.0,
                   help="checkpoint bytes per commit in MB of 10^6 bytes (default 12)")
    p.add_argument("--seed", type=int, default=0, help="synthetic scene seed (default 0)")
    p.add_argument("--local-dir", type=Path, default=None,
                   help="folder in which the local backend's temporary folder is made (default: system temp)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "storage_throughput.json", help="JSON results path")
    args = p.parse_args(argv)
    if args.frames < 1:
        p.error("--frames must be at least 1")
    if args.segment_frames < 1:
        p.error("--segment-frames must be at least 1")
    if args.checkpoint_mb < 0:
        p.error("--checkpoint-mb must not be negative")
    return args


# -- inputs, made before any timing ---------------------------------------------------------------


def render_truths(scenario: str, args: argparse.Namespace) -> tuple[list[np.ndarray], float]:
    """The (H, W) uint8 truth map of every frame, and the seconds rendering took."""
    start = time.perf_counter()
    source = SyntheticSource(scenario, seed=args.seed, width=args.width, height=args.height, frames=args.frames)
    truths = [frame.truth for frame in source]
    return truths, time.perf_counter() - start


def make_records(frames: int, fps: float = 30.0, seed: int = 0) -> list[dict[str, Any]]:
    """Plausible per-frame records: keyframes on a stride that grows 8..64, up to 8 updates each."""
    rng = np.random.default_rng([seed, 11])
    records = []
    stride, next_keyframe = 8, 0
    for index in range(frames):
        keyframe = index >= next_keyframe
        accuracy = float(rng.uniform(0.7, 0.99)) if keyframe else None
        updates = int(rng.integers(0, 9)) if keyframe else 0
        if keyframe:
            stride = min(stride * 2, 64) if accuracy is not None and accuracy > 0.9 else max(stride // 2, 8)
            next_keyframe = index + stride
        miou = float(rng.uniform(0.75, 0.95))
        records.append({
            "frame_index": index,
            "timestamp": index / fps,
            "keyframe": keyframe,
            "updates": updates,
            "stride": stride,
            "keyframe_accuracy": accuracy,
            "student_seconds": float(rng.uniform(0.02, 0.05)) + 0.03 * updates,
            "teacher_seconds": float(rng.uniform(0.15, 0.3)) if keyframe else 0.0,
            "miou": miou,
            "miou_foreground": miou - float(rng.uniform(0.0, 0.1)),
        })
    return records


class Checkpoints:
    """Random checkpoint bytes, different at every commit (the next frame index leads the payload)."""

    def __init__(self, megabytes: float, seed: int = 0) -> None:
        size = round(megabytes * MB)
        self.body = np.random.default_rng([seed, 12]).bytes(max(size - 8, 0))
        self.size = size

    def __call__(self, next_frame: int) -> bytes:
        return (struct.pack("<q", next_frame) + self.body)[:self.size]


# -- a store that counts what goes through it -----------------------------------------------------


class CountingStore(ObjectStore):
    """Delegates to ``inner``; counts bytes written per kind of object and the seconds spent in calls."""

    KINDS = ("records", "masks", "checkpoints", "commits")

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.reset_counts()

    def reset_counts(self) -> None:
        self.bytes: dict[str, int] = dict.fromkeys((*self.KINDS, "other"), 0)
        self.calls: dict[str, int] = {"put": 0, "get": 0, "exists": 0, "list": 0, "delete": 0}
        self.seconds = 0.0

    @contextlib.contextmanager
    def _timed(self, call: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.calls[call] += 1

    def put(self, key: str, data: bytes) -> None:
        with self._timed("put"):
            self.inner.put(key, data)
        parts = key.split("/")
        kind = parts[-2] if len(parts) >= 2 and parts[-2] in self.KINDS else "other"
        self.bytes[kind] += len(data)

    def get(self, key: str) -> bytes:
        with self._timed("get"):
            return self.inner.get(key)

    def exists(self, key: str) -> bool:
        with self._timed("exists"):
            return self.inner.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        with self._timed("list"):
            return self.inner.list(prefix)

    def create(self, key: str, data: bytes) -> bool:
        with self._timed("put"):
            return self.inner.create(key, data)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def open_read(self, key: str, info: ObjectInfo | None = None) -> BinaryIO:
        return self.inner.open_read(key, info)

    def delete(self, key: str) -> None:
        with self._timed("delete"):
            self.inner.delete(key)

    def arrow_filesystem(self) -> tuple[Any, str]:
        return self.inner.arrow_filesystem()

    def url(self, key: str) -> str:
        return self.inner.url(key)


# -- backends -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def loopback_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with one bucket; yields the endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)  # one line per request otherwise
    server.start()
    try:
        with patched_environ({
            "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": None, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        }):
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            yield endpoint
    finally:
        server.stop()
        access_log.setLevel(level)


def filesystem_type(path: Path) -> str:
    """The mount type (ext4, tmpfs, ...) holding ``path``, from /proc/mounts; ``unknown`` elsewhere."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved = str(path.resolve())
    best = ("", "unknown")
    for point, kind in mounts:
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best[0]):
            best = (point, kind)
    return best[1]


# -- one run --------------------------------------------------------------------------------------


def warm_up(uri: str) -> None:
    """Write and drop a tiny stream, so one-time costs (imports, first connection) stay out of the timings."""
    area = StreamArea(open_store(uri), f"warm-up-{uuid.uuid4().hex[:6]}")
    writer = SegmentWriter(area, lambda next_frame: b"", segment_frames=2)
    for record in make_records(4):
        writer.add(record, np.zeros((8, 8), np.uint8))
    writer.finish({})
    read_stream_table(area, "masks")
    area.reset()


class ReadbackError(RuntimeError):
    """What was committed does not read back as what was written."""


def write_stream(backend: str, uri: str, scenario: str, truths: list[np.ndarray], records: list[dict[str, Any]],
                 checkpoints: Checkpoints, args: argparse.Namespace) -> dict[str, Any]:
    """Write one stream through SegmentWriter, timed; read it back and check it."""
    store = CountingStore(open_store(uri))
    stream_id = f"{scenario}-{uuid.uuid4().hex[:6]}"
    area = StreamArea(store, stream_id)
    commits_before = len(area.commits())
    store.reset_counts()

    start = time.perf_counter()
    writer = SegmentWriter(area, checkpoints, segment_frames=args.segment_frames)
    for record, mask in zip(records, truths, strict=True):
        writer.add(record, mask)
    writer.finish({"stream_id": stream_id, "frames": len(records),
                   "mask_compression": writer.raw_mask_bytes / max(writer.mask_bytes, 1)})
    seconds = time.perf_counter() - start
    store_seconds = store.seconds
    commits = len(area.commits()) - commits_before
    written = sum(store.bytes.values())

    start = time.perf_counter()
    reader = StreamArea(open_store(uri), stream_id)
    record_rows = read_stream_table(reader, "records").num_rows
    masks = read_stream_table(reader, "masks")
    read_seconds = time.perf_counter() - start
    check_readback(backend, scenario, reader, record_rows, masks, truths)

    frames = len(records)
    raw = args.width * args.height
    stored_mask = store.bytes["masks"] / frames
    return {
        "backend": backend, "scenario": scenario, "uri": store.url(area.prefix), "frames": frames,
        "commits": commits, "segment_frames": args.segment_frames, "seconds": seconds,
        "store_seconds": store_seconds, "store_share": store_seconds / seconds if seconds else math.nan,
        "store_calls": dict(store.calls), "frames_per_second": frames / seconds,
        "bytes_written": written, "bytes_written_by_kind": dict(store.bytes), "mb_written": written / MB,
        "mb_per_second": written / MB / seconds, "checkpoint_bytes": checkpoints.size,
        "mask_encoded_bytes_per_frame": writer.mask_bytes / frames, "mask_stored_bytes_per_frame": stored_mask,
        "raw_bytes_per_frame": raw, "compression_encoded": writer.raw_mask_bytes / max(writer.mask_bytes, 1),
        "compression_stored": raw / stored_mask if stored_mask else math.nan,
        "readback_record_rows": record_rows, "readback_mask_rows": masks.num_rows, "read_seconds": read_seconds,
    }


def check_readback(backend: str, scenario: str, area: StreamArea, record_rows: int, masks: Any,
                   truths: list[np.ndarray]) -> None:
    where = f"{backend} {scenario} ({area.store.url(area.prefix)})"
    if record_rows != len(truths):
        raise ReadbackError(f"{where}: read back {record_rows} record rows, wrote {len(truths)} frames")
    if masks.num_rows != len(truths):
        raise ReadbackError(f"{where}: read back {masks.num_rows} mask rows, wrote {len(truths)} frames")
    if area.summary() is None:
        raise ReadbackError(f"{where}: the stream has no summary.json after finish()")
    for row in (0, masks.num_rows - 1):
        got = masks.slice(row, 1).to_pylist()[0]
        mask = decode_mask(got["data"], got["height"], got["width"])
        if not np.array_equal(mask, truths[got["frame_index"]]):
            raise ReadbackError(f"{where}: the mask of frame {got['frame_index']} does not decode to what was written")


# -- report ---------------------------------------------------------------------------------------


def check_target(runs: list[dict[str, Any]]) -> dict[str, Any]:
    name = f"stored masks >= {COMPRESSION_TARGET:g}x smaller than raw uint8 on every scenario"
    if not runs:
        return {"target": name, "status": "not checked", "detail": "nothing was run"}
    worst: dict[str, float] = {}
    for r in runs:
        worst[r["scenario"]] = min(worst.get(r["scenario"], math.inf), r["compression_stored"])
    passed = all(v >= COMPRESSION_TARGET for v in worst.values())
    return {"target": name, "status": "PASS" if passed else "FAIL",
            "detail": "; ".join(f"{s}: {fmt(v, 1, 'x')}" for s, v in worst.items())}


def results_table(runs: list[dict[str, Any]]) -> str:
    headers = ["backend", "scenario", "frames", "commits", "seconds", "frames/s", "MB written", "MB/s",
               "store share", "mask B/frame (zlib)", "mask B/frame (stored)", "raw B/frame", "compression"]
    rows = [[r["backend"], r["scenario"], str(r["frames"]), str(r["commits"]), fmt(r["seconds"], 2),
             fmt(r["frames_per_second"], 1), fmt(r["mb_written"], 1), fmt(r["mb_per_second"], 1),
             fmt(r["store_share"], 2), fmt(r["mask_encoded_bytes_per_frame"], 0),
             fmt(r["mask_stored_bytes_per_frame"], 0), str(r["raw_bytes_per_frame"]),
             fmt(r["compression_stored"], 1, "x")] for r in runs]
    return markdown_table(headers, rows)


def print_report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    env = payload["environment"]
    print("# Storage throughput of the segment commit path\n")
    local = payload.get("local_filesystem")
    where = f"local folder on {local}" if local else "no local folder"
    print(f"{describe_environment(env)}. Synthetic truth maps as masks, {args.width}x{args.height}, "
          f"{args.frames} frames, seed {args.seed}; segments of {args.segment_frames} frames, "
          f"{args.checkpoint_mb:g} MB checkpoint per commit; {where}; S3 is moto on loopback in this process. "
          f"MB = 10^6 bytes, every byte written (checkpoints included) over the timed seconds; "
          f"store share = time inside store calls; compression = raw uint8 / stored masks Parquet.\n")
    print(results_table(payload["runs"]))
    print("\n## Checks\n")
    print(f"- PASS: read back {args.frames} record and mask rows per stream, first and last masks exact")
    t = payload["target"]
    print(f"- {t['status']}: {t['target']} ({t['detail']})")
    print(f"\nJSON: {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment("cpu")
    payload: dict[str, Any] = {"benchmark": "storage_throughput", "environment": env,
                               "args": vars(args) | {"out": args.out.name, "local_dir": None},
                               "runs": []}
    print(f"{describe_environment(env)}; {args.width}x{args.height}, {args.frames} frames, "
          f"{args.segment_frames}-frame segments, {args.checkpoint_mb:g} MB checkpoints", file=sys.stderr)
    records = make_records(args.frames, seed=args.seed)
    checkpoints = Checkpoints(args.checkpoint_mb, seed=args.seed)
    with contextlib.ExitStack() as stack:
        uris: dict[str, str] = {}
        if "local" in args.backends:
            if args.local_dir is not None:
                args.local_dir.mkdir(parents=True, exist_ok=True)
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="odist-bench-",
                                                                           dir=args.local_dir)))
            payload["local_filesystem"] = filesystem_type(folder)
            uris["local"] = str(folder / "run")
        if "s3" in args.backends:
            payload["s3_endpoint"] = stack.enter_context(loopback_s3())
            uris["s3"] = f"s3://{BUCKET}/run"
        for uri in uris.values():
            warm_up(uri)
        for scenario in args.scenarios:
            truths, render_seconds = render_truths(scenario, args)
            print(f"{scenario}: rendered {len(truths)} frames in {render_seconds:.1f}s (not timed)", file=sys.stderr)
            for backend in (b for b in BACKENDS if b in args.backends):
                run = write_stream(backend, uris[backend], scenario, truths, records, checkpoints, args)
                run["render_seconds"] = render_seconds
                payload["runs"].append(run)
                write_results(args.out, payload)
                print(f"{backend} {scenario}: {run['frames_per_second']:.1f} frames/s, "
                      f"{run['mb_per_second']:.1f} MB/s, {run['commits']} commits", file=sys.stderr)
            del truths
    payload["target"] = check_target(payload["runs"])
    write_results(args.out, payload)
    print_report(payload, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
