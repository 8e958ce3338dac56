"""One small object-store interface over local folders (plain paths, ``file://``) and ``s3://``.

Keys are ``/``-separated paths below the store's root. ``put`` is atomic on both backends: a local
object is written to a temporary name and renamed; an S3 PUT is atomic by nature. S3 settings come
from the standard AWS sources (environment, profile), including ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` for S3-compatible stores; transient errors and throttling are retried
with backoff.
"""

from __future__ import annotations

import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from odist.errors import StorageError
from odist.storage.atomic import create_bytes_exclusive, write_bytes_atomic
from odist.storage.location import parse_location
from odist.storage.object_reader import ObjectInfo, S3ObjectReader, local_info


class ObjectStore(ABC):
    """A flat namespace of byte objects under one root URI."""

    uri: str
    retries = 0  # requests this store repeated after a transient error or throttling (S3: its client's too)

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (readers see the old object or the whole new one)."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Write ``data`` at ``key`` only if no object is there; False if one is. Of writers racing to create
        one key, exactly one gets True (a local hard link; an S3 PUT with ``If-None-Match: *``)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes at ``key``; ``StorageError`` naming the URI when it is missing."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """The size and version of the object at ``key``; ``StorageError`` (``missing``) naming it when absent."""

    @abstractmethod
    def open_read(self, key: str, info: ObjectInfo | None = None) -> BinaryIO:
        """The object at ``key`` as a seekable binary file, read as it is consumed (never whole into memory).
        With ``info``, a ``StorageError`` when the object is no longer that version."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys that start with ``prefix`` (recursively)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    @abstractmethod
    def arrow_filesystem(self) -> tuple[Any, str]:
        """A ``pyarrow.fs`` filesystem and the root path within it, for datasets over this store."""

    def url(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/{key}"

    def missing(self, key: str) -> StorageError:
        """The one error every store raises for an absent object: it names the object's URI and is ``missing``."""
        return StorageError(f"{self.url(key)} does not exist", missing=True)

    def get_or_none(self, key: str) -> bytes | None:
        return self.get(key) if self.exists(key) else None

    def sweep_temporaries(self, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
        """Delete what writes a crash interrupted left under the folder ``prefix``, except under the folders
        ``skip`` (keys); their keys. An object store's PUT leaves nothing behind, so by default there is nothing
        to sweep."""
        return []

    def has_any(self, prefix: str = "") -> bool:
        """Whether any object's key starts with ``prefix``."""
        return bool(self.list(prefix))

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """``put`` every ``(key, data)`` pair, at the same time: each is atomic on its own, none is ordered
        before another (a local store's syncs, an S3 store's round trips overlap). The first item's error
        (in the given order) is raised once every put has ended."""
        if len(items) < 2:
            for key, data in items:
                self.put(key, data)
            return
        futures = [_put_pool().submit(self.put, key, data) for key, data in items]
        wait(futures)
        for future in futures:
            future.result()


PUT_THREADS = 8  # the most puts ``put_many`` runs at once, over every store of the process
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_put_pool() -> None:
    """In a forked child: the parent's threads are not there, so the next ``put_many`` starts its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_put_pool)


def _put_pool() -> ThreadPoolExecutor:
    """The process's threads for ``put_many``, started on first use (a stream per call would pay their start)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=PUT_THREADS, thread_name_prefix="odist-put")
        return _pool


class LocalStore(ObjectStore):
    """Objects as files under a folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise StorageError(f"{self.root} is a file, not a folder", "pass a folder path or URI")

    def _path(self, key: str) -> Path:
        """The file of ``key``; a ``StorageError`` when a link on the way leads out of the run root."""
        path = self.root / key
        self._check_inside(path.parent if path != self.root else path)
        return path

    def _check_inside(self, folder: Path) -> None:
        """Refuse ``folder`` when it resolves outside the root: odist never reads, writes or deletes through a
        link out of its run root (a root that is itself a link is fine)."""
        root = os.path.realpath(self.root)
        real = os.path.realpath(folder)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return
        link = next((p for p in (folder, *folder.parents) if p.is_symlink()), folder)
        raise StorageError(f"{link} is a link out of the run root {self.root} (to {os.path.realpath(link)})",
                           "odist never writes or deletes through such a link: replace it with a real folder, "
                           "or pass another --out")

    def _files(self, base: Path) -> list[Path]:
        """Every file below the folder ``base``; links to folders inside the root are not followed, and one
        leading out of it is a ``StorageError``."""
        found: list[Path] = []
        pending = [base]
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink() and entry.is_dir():
                    self._check_inside(path)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.is_file():
                    found.append(path)
        return found

    def put(self, key: str, data: bytes) -> None:
        try:
            write_bytes_atomic(self._path(key), data)
        except OSError as exc:
            raise StorageError(f"cannot write {self._path(key)}: {exc.strerror}",
                               "check the folder exists and is writable") from None

    def create(self, key: str, data: bytes) -> bool:
        try:
            return create_bytes_exclusive(self._path(key), data)
        except OSError as exc:
            raise StorageError(f"cannot write {self._path(key)}: {exc.strerror}",
                               "check the folder exists and is writable") from None

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise self.missing(key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if path.is_dir():
            raise StorageError(f"{path} is a folder, not a file", "name a file")
        try:
            return local_info(path)
        except FileNotFoundError:
            raise self.missing(key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from None

    def open_read(self, key: str, info: ObjectInfo | None = None) -> BinaryIO:
        now = None if info is None else self.stat(key)
        if now is not None and now != info:
            raise _changed(self.url(key), info, now)
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise self.missing(key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror}") from None

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix.endswith("/") or not prefix else self._path(prefix).parent
        self._check_inside(base)
        if not base.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self._files(base))
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def sweep_temporaries(self, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
        """Delete the hidden temporary files (``.NAME.XXXX.tmp``, see ``write_bytes_atomic``) that a crash
        mid-write left under the folder ``prefix``, except under the folders ``skip`` (keys, e.g. a lease
        renewed from another thread); their keys. Call it only where no other writer is at work."""
        base = self._path(prefix)
        self._check_inside(base)
        if not base.is_dir():
            return []
        kept = [self._path(folder) for folder in skip]
        found = sorted(p for p in self._files(base) if p.name.startswith(".") and p.name.endswith(".tmp")
                       and not any(p.is_relative_to(folder) for folder in kept))
        for path in found:
            path.unlink(missing_ok=True)
        return [path.relative_to(self.root).as_posix() for path in found]

    def arrow_filesystem(self) -> tuple[Any, str]:
        import pyarrow.fs

        return pyarrow.fs.LocalFileSystem(), str(self.root)


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


def _changed(where: str, before: ObjectInfo, now: ObjectInfo) -> StorageError:
    return StorageError(f"{where} changed: it was {before.describe()}, it is now {now.describe()}",
                        "keep objects in place while a job reads them; run the stream again with --overwrite")


# What S3 clients accept as a bucket name (legacy names included); anything else never reaches the endpoint.
_BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")
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


def open_store(uri: str | os.PathLike[str] | ObjectStore) -> ObjectStore:
    """A store for a plain path, a ``file://`` URI or an ``s3://bucket/prefix`` URI (a store is returned as it is)."""
    if isinstance(uri, ObjectStore):
        return uri
    where = parse_location(str(uri))
    if where.scheme == "s3":
        if not where.bucket:
            raise StorageError(f"{where.text} names no bucket", "write s3://BUCKET/PREFIX")
        if not _BUCKET.fullmatch(where.bucket):
            raise StorageError(f"{where.text} names an invalid S3 bucket {where.bucket!r}",
                               "bucket names are 3-63 lowercase letters, digits, '.' and '-', starting and ending "
                               "with a letter or digit")
        return S3Store(where.bucket, where.path)
    if not where.is_local:
        raise StorageError(f"unsupported storage URI {where.text}",
                           "use a local path, file://PATH or s3://BUCKET/PREFIX")
    return LocalStore(where.path)
