"""An S3 object read as a seekable file: the same bytes as the object for any reads and seeks, a connection cut
mid-body resumed from the byte it stopped at, and a replaced object refused."""

from __future__ import annotations

import io
import uuid
from urllib.parse import urlparse

import numpy as np
import pytest
from s3proxy import FaultProxy

from odist.errors import StorageError
from odist.storage.object_reader import S3ObjectReader
from odist.storage.objectstore import S3Store, open_store

SIZE = 300_000
BLOCK = 40_000  # many GETs for a small object


@pytest.fixture
def blob(s3_bucket) -> tuple[S3Store, bytes]:
    data = np.random.default_rng(1).integers(0, 256, SIZE, np.uint8).tobytes()
    store = open_store(f"s3://{s3_bucket}")
    store.put("blob.bin", data)
    return store, data


def test_reads_and_seeks_give_the_object_bytes(blob):
    store, data = blob
    reader = S3ObjectReader(store, "blob.bin", store.stat("blob.bin"), block=BLOCK)
    assert reader.read(10) == data[:10]
    rng = np.random.default_rng(2)
    for _ in range(40):
        start, size = int(rng.integers(0, SIZE)), int(rng.integers(1, 70_000))
        reader.seek(start)
        assert reader.read(size) == data[start:start + size]
        assert reader.tell() == min(start + size, SIZE)
    reader.seek(-5, io.SEEK_END)
    assert reader.read() == data[-5:] and reader.read(3) == b""
    reader.seek(0)
    assert reader.read() == data  # a read of everything spans every block
    assert reader.requests >= SIZE // BLOCK and store.stat("blob.bin").size == SIZE


def test_a_connection_cut_mid_body_resumes_from_the_byte_it_stopped_at(blob, s3_endpoint, monkeypatch):
    _, data = blob
    upstream = urlparse(s3_endpoint)
    proxy = FaultProxy((upstream.hostname, upstream.port), cut_bytes=12_000)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("AWS_RETRY_MODE", "standard")
        store = open_store(blob[0].uri)
        info = store.stat("blob.bin")
        proxy.every(2, "cut")  # every other request loses its connection 12 kB into the answer
        reader = S3ObjectReader(store, "blob.bin", info, block=BLOCK)
        assert reader.read() == data
        # every cut is retried, but the last, short GET may end before its cut
        assert proxy.faults["cut"] >= 3 and store.retries >= proxy.faults["cut"] - 1
    finally:
        proxy.stop()


def test_an_object_replaced_while_it_is_read_fails_in_one_line(blob):
    store, data = blob
    reader = S3ObjectReader(store, "blob.bin", store.stat("blob.bin"), block=BLOCK)
    assert reader.read(1000) == data[:1000]
    store.put("blob.bin", data[::-1])
    reader.seek(SIZE // 2)  # the next GET asks for the version it started with
    with pytest.raises(StorageError, match=r"blob\.bin was replaced while it was being read") as caught:
        reader.read(1000)
    assert "\n" not in str(caught.value)


def test_open_read_of_a_version_no_longer_there_fails_and_a_missing_key_is_named(blob):
    store, data = blob
    before = store.stat("blob.bin")
    store.put("blob.bin", data[:1000])
    with pytest.raises(StorageError, match=r"blob\.bin was replaced while it was being read"):
        store.open_read("blob.bin", before).read(10)  # the GET asks for the version given
    with pytest.raises(StorageError, match=rf"s3://{store.bucket}/nope-{'x' * 3} does not exist") as caught:
        store.stat(f"nope-{'x' * 3}")
    assert caught.value.missing


def test_a_local_store_reads_and_identifies_files_too(tmp_path):
    store = open_store(str(tmp_path))
    store.put(f"{uuid.uuid4().hex}/a.bin", b"abc")
    key = store.list()[0]
    with store.open_read(key, store.stat(key)) as file:
        assert file.read() == b"abc"
    assert store.stat(key).size == 3 and store.stat(key).version.startswith("modified ")
    with pytest.raises(StorageError, match="does not exist") as caught:
        store.stat("missing.bin")
    assert caught.value.missing
