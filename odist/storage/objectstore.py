"""One small object-store interface over local folders (plain paths, ``file://``) and ``s3://``.

Keys are ``/``-separated paths below the store's root. ``put`` is atomic on both backends: a local
object is written to a temporary name and renamed; an S3 PUT is atomic by nature. S3 settings come
from the standard AWS sources (environment, profile), including ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` for S3-compatible stores; transient errors and throttling are retried
with backoff.

The interface is ``odist.storage.store``, the backends ``odist.storage.local_store`` and
``odist.storage.s3_store``; this module picks one for a URI (``open_store``) and names all three.
"""

from __future__ import annotations

import os
import re

from odist.errors import StorageError
from odist.storage.local_store import LocalStore
from odist.storage.location import parse_location
from odist.storage.s3_store import S3Store
from odist.storage.store import ObjectStore

__all__ = ["LocalStore", "ObjectStore", "S3Store", "open_store"]

# What S3 clients accept as a bucket name (legacy names included); anything else never reaches the endpoint.
_BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")


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
