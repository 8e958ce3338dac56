"""Video files where they are: ``s3://`` objects decode through the store layer to the same frames as the local
file, faults on the wire are retried from the byte they stopped at, and a missing, forbidden or replaced object
is one line naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from s3proxy import FaultProxy
from videoclips import encode_noise

from odist.errors import InputError, StorageError
from odist.storage.objectstore import open_store
from odist.video.archive import ArchiveSource
from odist.video.open import open_source

FRAMES = 40


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return encode_noise(tmp_path_factory.mktemp("video") / "clip.mp4", FRAMES)


@pytest.fixture
def stored(clip, s3_bucket) -> str:
    open_store(f"s3://{s3_bucket}/cams").put("north/clip.mp4", clip.read_bytes())
    return f"s3://{s3_bucket}/cams/north/clip.mp4"


def _images(source) -> list[np.ndarray]:
    return [frame.image for frame in source]


def test_an_s3_video_decodes_to_the_local_files_frames_and_names_its_version(clip, stored):
    local, remote = ArchiveSource(clip), open_source(stored, fps=15, width=80)
    assert isinstance(remote, ArchiveSource) and remote.name == "clip.mp4" and str(remote.path) == stored
    assert (remote.width, remote.height, remote.fps, remote.num_frames) == (80, 48, 15, FRAMES // 2)
    assert all(np.array_equal(a, b) for a, b in zip(_images(ArchiveSource(clip, fps=15, width=80)), _images(remote),
                                                    strict=True))
    full = ArchiveSource(stored)
    assert all(np.array_equal(a, b) for a, b in zip(_images(local), _images(full), strict=True))
    identity = full.identity()
    assert identity["bytes"] == clip.stat().st_size and identity["version"].startswith('ETag "')
    stats = full.read_stats()  # the probe and the pass it hands its container: one GET of the small object
    assert stats["requests"] >= 1 and stats["bytes"] >= clip.stat().st_size and stats["retries"] == 0
    assert local.read_stats() is None and local.identity()["version"].startswith("modified ")


def test_file_uris_read_the_local_file(clip):
    assert len(_images(open_source(clip.as_uri()))) == FRAMES


def test_a_missing_key_an_unknown_scheme_and_a_key_less_uri_are_one_line_errors(s3_bucket):
    for uri, message in [(f"s3://{s3_bucket}/cams/nope.mp4", rf"video object s3://{s3_bucket}/cams/nope\.mp4 does "
                          "not exist"),
                         (f"s3://{s3_bucket}/cams/", "names no video object"),
                         ("rtsp://camera.local/stream1", r"rtsp:// is not supported.*odist live")]:
        with pytest.raises(InputError, match=message) as caught:
            open_source(uri)
        assert "\n" not in str(caught.value)


def test_a_video_replaced_between_opens_is_refused(clip, stored):
    source = ArchiveSource(stored)
    bucket_and_key = urlparse(stored)
    open_store(f"s3://{bucket_and_key.netloc}").put(bucket_and_key.path.lstrip("/"), clip.read_bytes()[:-100])
    source.close()  # the probe's container goes: the next pass opens the object again
    with pytest.raises(StorageError, match=rf"{stored} was replaced while it was being read") as caught:
        _images(source)
    assert "\n" not in str(caught.value)


@pytest.fixture
def proxy(s3_endpoint, monkeypatch):
    """A fault proxy in front of the S3 server, which the S3 client talks to from now on."""
    upstream = urlparse(s3_endpoint)
    proxy = FaultProxy((upstream.hostname, upstream.port), stall_s=0.3, cut_bytes=6000)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    yield proxy
    proxy.stop()


def test_drops_stalls_slowdowns_and_cuts_mid_object_are_retried_and_counted(clip, stored, proxy, monkeypatch):
    monkeypatch.setattr("odist.storage.object_reader.BLOCK_BYTES", 20_000)  # many GETs for a small clip
    source = ArchiveSource(stored)
    proxy.every(2, "cut", "drop", "stall", "slowdown")
    images = _images(source)
    proxy.every(1)
    assert all(np.array_equal(a, b) for a, b in zip(_images(ArchiveSource(clip)), images, strict=True))
    assert min(proxy.faults[fault] for fault in ("cut", "drop", "stall", "slowdown")) >= 1
    assert source.read_stats()["retries"] >= proxy.faults["cut"] - 1 > 0


def test_a_forbidden_object_is_one_line_naming_it(stored, proxy):
    proxy.every(1, "denied")
    with pytest.raises(StorageError, match=rf"access denied to {stored} \(AccessDenied\)") as caught:
        open_source(stored)
    assert "\n" not in str(caught.value)


LOOPS = 40  # an MPEG-TS clip of ~6 MB looped: a ~250 MB object
MEASURE = """
import json, sys
from odist.video.archive import ArchiveSource

def peak() -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) * 1024

source = ArchiveSource(sys.argv[1])
before = peak()
frames = sum(1 for _ in source)
print(json.dumps({"frames": frames, "growth": peak() - before, "stats": source.read_stats()}))
"""


def test_decoding_a_large_object_keeps_memory_bounded(tmp_path, s3_bucket):
    import boto3

    loop = encode_noise(tmp_path / "loop.ts", 30, width=640, height=360, codec="mpeg2video",
                        options={"g": "1", "b": "300M", "maxrate": "400M", "bufsize": "100M"})
    one = loop.read_bytes()
    size = len(one) * LOOPS
    boto3.client("s3").upload_fileobj(_Repeat(one, LOOPS), s3_bucket, "big/looped.ts")
    done = subprocess.run([sys.executable, "-c", MEASURE, f"s3://{s3_bucket}/big/looped.ts"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout)
    assert measured["frames"] == 30 * LOOPS and measured["stats"]["bytes"] >= size
    print(f"decoded {size / 1e6:.0f} MB from S3: peak RSS grew {measured['growth'] / 1e6:.1f} MB")
    assert size > 150e6 and measured["growth"] < size / 8, measured


class _Repeat:
    """A file object that reads ``data`` ``times`` over without holding the whole in memory."""

    def __init__(self, data: bytes, times: int) -> None:
        self.data, self.size, self.pos = data, len(data) * times, 0

    def read(self, size: int = -1) -> bytes:
        size = self.size - self.pos if size < 0 else min(size, self.size - self.pos)
        out = bytearray()
        while len(out) < size:
            at = (self.pos + len(out)) % len(self.data)
            out += self.data[at:at + size - len(out)]
        self.pos += size
        return bytes(out)
