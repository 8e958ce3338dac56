"""Where a video file's bytes are: a local path (or ``file://`` URI), an ``s3://`` object or an HTTP(S) URL.

``VideoFile`` is what ``ArchiveSource`` opens: it names the file in messages (never a secret), tells its
identity (size and version: an S3 ETag, a local modification time) and hands the decoder either a path or
URL FFmpeg opens itself, or a seekable file object that streams the object through the store layer (its
credentials, endpoint and retries), so that a video in object storage is decoded where it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

from odist.errors import InputError, StorageError
from odist.redact import redact, remember_url, strip_userinfo
from odist.storage.location import parse_location
from odist.storage.object_reader import ObjectInfo, local_info
from odist.storage.objectstore import ObjectStore, open_store

HTTP_SCHEMES = ("http://", "https://")
SCHEMES_READ = "a local path, file://PATH, s3://BUCKET/KEY or http(s)://URL"


@dataclass
class VideoFile:
    """One video file: ``shown`` in messages, ``name`` its file name; exactly one of ``path``, ``url`` or
    ``store`` + ``key`` says where its bytes are."""

    shown: str | Path
    name: str
    path: Path | None = None
    url: str | None = None
    store: ObjectStore | None = None
    key: str = ""
    info: ObjectInfo | None = None  # the version first seen; a re-open of another version is refused
    fetched: dict[str, int] = field(default_factory=lambda: {"bytes": 0, "requests": 0})  # over closed readers

    def check(self) -> None:
        """Fail in one line naming the file when it is missing, a folder or unreadable; note its version. (An
        object's version comes from its first GET, see ``target``.)"""
        if self.path is None:
            return
        if not self.path.exists():
            raise InputError(f"video file {self.shown} does not exist", "check the path, or use synthetic:NAME")
        if self.path.is_dir():
            raise InputError(f"{self.shown} is a directory, not a video file",
                             "pass a video file FFmpeg can decode (e.g. .mp4, .mkv, .avi, .mov)")
        now = local_info(self.path)
        if self.info is not None and now != self.info:
            raise InputError(f"video {self.shown} changed while the stream read it: it was {self.info.describe()}, "
                             f"it is now {now.describe()}",
                             "keep archived videos in place while a job reads them, or run the stream again "
                             "with --overwrite")
        self.info = now

    def target(self) -> str | BinaryIO:
        """What ``av.open`` takes: a path or URL, or a seekable file streaming the object (caller releases it).
        An object is read in the version first seen: another one fails its GETs (``If-Match``)."""
        if self.store is None:
            return self.url if self.url is not None else str(self.path)
        try:
            reader = self.store.open_read(self.key, self.info)
        except StorageError as exc:
            if exc.missing:
                raise InputError(f"video object {self.shown} does not exist",
                                 "check the bucket and key, e.g. with aws s3 ls s3://BUCKET/PREFIX/") from None
            raise
        self.info = self.info or getattr(reader, "info", None)
        return reader

    def release(self, target: str | BinaryIO) -> None:
        """Close what ``target`` opened, counting the bytes and requests it fetched."""
        if isinstance(target, str):
            return
        self.fetched["bytes"] += getattr(target, "bytes_fetched", 0)
        self.fetched["requests"] += getattr(target, "requests", 0)
        target.close()

    def read_stats(self) -> dict[str, int] | None:
        """For an object in S3: the bytes and GETs fetched so far, and the requests repeated after a fault."""
        if self.store is None:
            return None
        return {**self.fetched, "retries": self.store.retries}

    def identity(self) -> dict[str, object] | None:
        """The size and version recorded in ``stream.json`` (None for an HTTP(S) URL)."""
        if self.info is None:
            return None
        return {"bytes": self.info.size, "version": self.info.version}


def locate_video(where: str | Path) -> VideoFile:
    """The ``VideoFile`` a path, ``file://`` URI, ``s3://BUCKET/KEY`` or ``http(s)://`` URL names."""
    if isinstance(where, Path):
        return VideoFile(where, where.name, path=where)
    if where.lower().startswith(HTTP_SCHEMES):  # a video served over HTTP(S), e.g. a presigned URL
        remember_url(where)
        return VideoFile(redact(where), PurePosixPath(urlsplit(strip_userinfo(where)).path).name,
                         url=where)
    location = parse_location(where)
    if location.scheme == "s3":
        if not location.bucket or not location.path or location.path.endswith("/"):
            raise InputError(f"{where} names no video object", "write s3://BUCKET/KEY, e.g. s3://fleet/cam1/day1.mp4")
        return VideoFile(where, PurePosixPath(location.path).name, store=open_store(f"s3://{location.bucket}"),
                         key=location.path)
    if location.is_local:
        path = Path(location.path)
        return VideoFile(path, path.name, path=path)
    raise InputError(f"{redact(where)} is not a video file odist can read ({location.scheme}:// is not supported)",
                     f"pass {SCHEMES_READ}, or synthetic:SCENARIO; for a live camera use `odist live`")
