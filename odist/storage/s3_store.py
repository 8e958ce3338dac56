"""``S3Store``: objects under ``s3://bucket/prefix`` through one boto3 client per process and S3 settings.

Settings come from the standard AWS sources (environment, profile), including ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` for S3-compatible stores. Transient errors and throttling are retried by the client
(``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``), the one retry layer; the store maps what still fails to one
``StorageError`` line.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO
from urllib.parse import urlparse

from odist.errors import StorageError
from odist.storage.object_reader import ObjectInfo, S3ObjectReader
from odist.storage.store import ObjectStore


class S3Store(ObjectStore):
    """Objects under ``s3://bucket/prefix`` through boto3, whose client retries failed requests (one retry layer);
    ``attempts`` bounds how often a streamed body that drops mid-read is re-opened from its byte
    (``odist.storage.object_reader``), which no client does."""

    def __init__(self, bucket: str, prefix: str, *, attempts: int = 5, client: Any = None) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.attempts = attempts
        self.client = client or _s3_client()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self._call("write", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data)

    def create(self, key: str, data: bytes) -> bool:
        # 412: the object exists; 409: another conditional write of the key is in flight (it may win)
        response = self._call("write", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key),
                              Body=data, IfNoneMatch="*", refused=("PreconditionFailed", "412",
                                                                   "ConditionalRequestConflict", "409"))
        return response is not None

    def get(self, key: str) -> bytes:
        response = self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._call("read", key, self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except StorageError as exc:
            if exc.missing:
                return False
            raise
        return True

    def stat(self, key: str) -> ObjectInfo:
        head = self._call("read", key, self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        return ObjectInfo(int(head["ContentLength"]), f"ETag {head['ETag']}")

    def open_read(self, key: str, info: ObjectInfo | None = None) -> BinaryIO:
        """No HEAD: without ``info`` the first GET tells the size and version; with it, every GET asks for that
        version (``If-Match``), so another one fails there."""
        return S3ObjectReader(self, key, info)  # type: ignore[return-value]

    def get_range(self, key: str, start: int, end: int, *, if_match: str | None = None) -> dict[str, Any]:
        """The GET response for bytes ``start`` to ``end`` (exclusive) of ``key``, its body not yet read;
        ``if_match`` (an ``ObjectInfo.version``) makes a replaced object a ``StorageError``."""
        extra = {"IfMatch": if_match.removeprefix("ETag ")} if if_match else {}
        return self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key),
                          Range=f"bytes={start}-{end - 1}", **extra)

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        full = self._key(prefix)
        while True:
            page = self._call("list", prefix, self.client.list_objects_v2, Bucket=self.bucket, Prefix=full, **token)
            strip = len(self.prefix) + 1 if self.prefix else 0
            keys.extend(item["Key"][strip:] for item in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return sorted(keys)
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def has_any(self, prefix: str = "") -> bool:
        page = self._call("list", prefix, self.client.list_objects_v2, Bucket=self.bucket, Prefix=self._key(prefix),
                          MaxKeys=1)
        return bool(page.get("KeyCount", 0))

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def arrow_filesystem(self) -> tuple[Any, str]:
        import pyarrow.fs

        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        options: dict[str, Any] = {}
        if endpoint:
            parsed = urlparse(endpoint)
            options = {"endpoint_override": parsed.netloc or parsed.path, "scheme": parsed.scheme or "https"}
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["region"] = region
        return pyarrow.fs.S3FileSystem(**options), f"{self.bucket}/{self.prefix}".rstrip("/")

    def _call(self, action: str, key: str, method: Any, *, refused: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """``method(**kwargs)``; None when the store answers with a code in ``refused``; any other failure is a
        ``StorageError``. Transient errors (throttling, 5xx, dropped connections) are retried by the client
        itself (``_new_s3_client``: ``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``), whose repeats are counted."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

        try:
            response = method(**kwargs)
        except (NoCredentialsError, PartialCredentialsError) as exc:  # not the endpoint's nor the network's
            raise StorageError(f"cannot {action} {self.url(key)}: {exc}",
                               "give S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                               "or an instance/pod role") from None
        except ClientError as exc:
            self.retries += _client_retries(exc.response)
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in refused:
                return None
            raise _client_error(self, action, key, code, exc) from None
        except BotoCoreError as exc:
            raise StorageError(f"cannot {action} {self.url(key)}: {exc}",
                               "check the S3 endpoint (AWS_ENDPOINT_URL) and the network") from None
        self.retries += _client_retries(response)
        return response


def _client_retries(response: dict[str, Any]) -> int:
    """How often botocore itself repeated a request (its ``ResponseMetadata.RetryAttempts``)."""
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)


def _client_error(store: S3Store, action: str, key: str, code: str, exc: Exception) -> StorageError:
    where = store.url(key)
    if code in ("NoSuchKey", "404", "NotFound"):
        return store.missing(key)
    if code == "NoSuchBucket":
        return StorageError(f"bucket {store.bucket} does not exist ({where})", "create it or fix the URI")
    if code == "InvalidRange":
        return StorageError(f"{where} is empty", "upload the whole file")
    if code in ("PreconditionFailed", "412"):
        return StorageError(f"{where} was replaced while it was being read",
                            "keep objects in place while a job reads them; run the stream again with --overwrite")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return StorageError(f"access denied to {where} ({code})",
                            "check AWS credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE) and the bucket policy")
    return StorageError(f"cannot {action} {where}: {exc}")


_CLIENT_SETTINGS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
                    "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")
_clients: dict[tuple[str | None, ...], Any] = {}
os.register_at_fork(after_in_child=_clients.clear)  # a forked child opens its own connections


def _s3_client() -> Any:
    """One boto3 client per process and S3 settings (building one costs far more than a request)."""
    settings = tuple(os.environ.get(name) for name in _CLIENT_SETTINGS)
    if settings not in _clients:
        _clients[settings] = _new_s3_client()
    return _clients[settings]


def _new_s3_client() -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise StorageError("s3:// locations need boto3, which is not installed",
                           "pip install 'odist[s3]'") from None
    # The standard AWS_MAX_ATTEMPTS / AWS_RETRY_MODE settings win over odist's defaults.
    attempts = os.environ.get("AWS_MAX_ATTEMPTS") or "5"
    if not attempts.isdigit() or int(attempts) < 1:
        raise StorageError(f"AWS_MAX_ATTEMPTS={attempts} is not a positive whole number", "set it to 1 or more")
    retries = {"max_attempts": int(attempts), "mode": os.environ.get("AWS_RETRY_MODE") or "adaptive"}
    config = Config(retries=retries, connect_timeout=5, read_timeout=60)
    return boto3.client("s3", config=config)
