import pytest

from odist.errors import StorageError
from odist.storage.s3_store import S3Store


def test_missing_bucket_is_a_clear_error(s3_endpoint):
    store = S3Store("no-such-bucket-odist", "p")
    with pytest.raises(StorageError, match="bucket no-such-bucket-odist does not exist"):
        store.put("k", b"x")


def test_denied_credentials_are_a_clear_error(s3_endpoint, s3_bucket, monkeypatch):
    import urllib.request

    def enforce_auth_after(count: str) -> None:
        request = urllib.request.Request(f"{s3_endpoint}/moto-api/reset-auth", method="POST", data=count.encode(),
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request).read()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAINVALIDINVALID00")
    enforce_auth_after("0")
    try:
        with pytest.raises(StorageError, match=f"access denied to s3://{s3_bucket}/p/k"):
            S3Store(s3_bucket, "p").put("k", b"x")
    finally:
        enforce_auth_after("inf")


def test_unreachable_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = S3Store("bucket", "p", attempts=2)
    with pytest.raises(StorageError, match=r"s3://bucket/p/k.*AWS_ENDPOINT_URL"):
        store.get("k")


def test_missing_credentials_are_named_as_such_not_the_network(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3 = pytest.importorskip("boto3")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session made earlier holds the credentials it found
    with pytest.raises(StorageError) as info:
        S3Store("bucket", "p", attempts=2).get("k")
    assert "credentials" in str(info.value) and "AWS_ACCESS_KEY_ID" in str(info.value)
    assert "network" not in str(info.value)

