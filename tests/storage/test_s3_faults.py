"""S3 faults on the wire: a stream written through a proxy that drops connections, stalls and answers 503 SlowDown.

Runs through intermittent faults finish, every frame once, with the retries counted in the summary; an outage
that outlasts the retries fails in one line and the stream resumes cleanly once the store answers again.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import pytest
from leases import expire_lease
from s3proxy import FaultProxy

import odist
from odist.errors import LeaseError, StorageError
from odist.storage.layout import StreamArea
from odist.storage.objectstore import S3Store, open_store
from odist.storage.reader import read_stream_table

FRAMES = 12
STREAM = "static_easy"
# The writers keep the default lease (30 s): through the faults its renewals are dropped, stalled and refused
# too, and botocore's backoff between retries would outlast a short one.
RUN = {"overrides": ["source.width=64", "source.height=48", f"source.frames={FRAMES}", "storage.segment_frames=4",
                     "student.width=0.25", "threads=1", "distill.max_updates=2"]}


def _resume_once_the_lease_is_free(out: str) -> dict:
    """Resume the stream; the outage kept the failed writer from dropping its lease, which refuses the resume
    until it expires (the test ages it at once)."""
    with pytest.raises(LeaseError):
        odist.distill(f"synthetic:{STREAM}", out=out, resume=True, **RUN)
    expire_lease(StreamArea(open_store(out), STREAM))  # as waiting out its ttl would
    return odist.distill(f"synthetic:{STREAM}", out=out, resume=True, **RUN)


@pytest.fixture(scope="module")
def proxy(s3_endpoint):
    upstream = urlparse(s3_endpoint)
    proxy = FaultProxy((upstream.hostname, upstream.port), stall_s=0.5)
    yield proxy
    proxy.stop()


@pytest.fixture
def through_proxy(proxy, s3_endpoint, monkeypatch):
    """A fresh run root in a fresh bucket, reached through the proxy (which forwards everything to start with)."""
    import boto3

    bucket = f"odist-wire-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    proxy.every(1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")  # adaptive mode's client-side rate limit would only slow this
    return f"s3://{bucket}/run"


def _frames(uri: str) -> list[int]:
    return read_stream_table(StreamArea(open_store(uri), STREAM)).column("frame_index").to_pylist()


def test_a_run_through_drops_stalls_and_slowdowns_finishes_with_its_retries_counted(proxy, through_proxy,
                                                                                  one_torch_thread):
    before = dict(proxy.faults)
    proxy.every(4, "drop", "stall", "slowdown")  # every fourth request, each fault in turn
    summary = odist.distill(f"synthetic:{STREAM}", out=through_proxy, **RUN)
    proxy.every(1)

    injected = {fault: proxy.faults[fault] - before[fault] for fault in ("drop", "stall", "slowdown")}
    assert min(injected.values()) >= 2, injected
    assert summary["frames"] == FRAMES and _frames(through_proxy) == list(range(FRAMES))
    # A dropped or refused request was repeated, a stalled one only waited (the summary counts the requests
    # made before it was written).
    assert 0 < summary["storage_retries"] <= injected["drop"] + injected["slowdown"]
    assert StreamArea(open_store(through_proxy), STREAM).status()[0] == "done"


def test_an_outage_fails_in_one_line_and_the_stream_resumes_cleanly(proxy, through_proxy, monkeypatch,
                                                                   one_torch_thread):
    outage = []

    def plan(n: int, head: bytes) -> str | None:  # every request from the second commit record on is refused
        if b"commits/000001.json" in head.split(b"\r\n", 1)[0]:
            outage.append(n)
        return "slowdown" if outage else None

    proxy.plan = plan
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    bucket, prefix = urlparse(through_proxy).netloc, "run"
    with pytest.raises(StorageError) as failed:
        odist.distill(f"synthetic:{STREAM}", out=S3Store(bucket, prefix, attempts=1), **RUN)
    message = str(failed.value)
    assert "\n" not in message and "SlowDown" in message and "failed.json could not be written" in message
    assert "commits/000001.json" in message  # the first error, not only the failed.json that followed it

    proxy.every(1)
    area = StreamArea(open_store(through_proxy), STREAM)
    assert [c.sequence for c in area.commits()] == [0]  # what was committed before the outage is kept
    summary = _resume_once_the_lease_is_free(through_proxy)
    assert summary["frames"] == FRAMES and _frames(through_proxy) == list(range(FRAMES))
    assert StreamArea(open_store(through_proxy), STREAM).status()[0] == "done"
