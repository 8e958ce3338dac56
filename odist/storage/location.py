"""One parser for the locations odist reads and writes: paths, ``file://``, ``s3://``, ``synthetic:``, URLs.

Every layer asks here what a location is, so ``file://`` decoding, the ``synthetic:`` prefix and the
stream id a location gives are written once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse, urlsplit
from urllib.request import url2pathname

from odist.redact import strip_userinfo

SYNTHETIC = "synthetic:"
REPLAY = "replay:"
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Location:
    """A parsed location: ``scheme`` is ``""`` for a plain path, else ``file``, ``s3``, ``synthetic``, ``udp``..."""

    text: str
    scheme: str
    bucket: str = ""  # s3 only
    path: str = ""  # the local path (plain or file://), the s3 key prefix, or the synthetic scenario

    @property
    def is_local(self) -> bool:
        return self.scheme in ("", "file")

    @property
    def is_synthetic(self) -> bool:
        return self.scheme == "synthetic"


def parse_location(text: str) -> Location:
    """Parse ``text``; a ``file://`` URI decodes to its local path, a plain path expands ``~``."""
    text = str(text)
    if text.startswith(SYNTHETIC):
        return Location(text, "synthetic", path=text[len(SYNTHETIC):])
    if not is_url(text):
        return Location(text, "", path=str(Path(text).expanduser()) if text.startswith("~") else text)
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        return Location(text, "file", path=url2pathname(unquote(parsed.path)))
    if scheme == "s3":
        return Location(text, "s3", bucket=parsed.netloc, path=unquote(parsed.path).lstrip("/"))
    return Location(text, scheme, path=parsed.path)


def is_url(text: str) -> bool:
    """Whether ``text`` starts with a ``scheme://``."""
    return bool(URL_PATTERN.match(text))


def stream_name(uri: str) -> str:
    """What a stream id is derived from: the scenario name, else the file stem."""
    if uri.startswith(SYNTHETIC):
        return uri[len(SYNTHETIC):]
    if is_url(uri):  # the path only: never a host, a password or a signed query string
        return PurePosixPath(urlsplit(strip_userinfo(uri)).path).stem
    return PurePosixPath(uri).stem


def clean_stream_id(name: str) -> str:
    """``name`` with every run of characters a stream id cannot hold replaced by ``-``, trimmed to 128."""
    cleaned = _BAD_ID_CHARS.sub("-", name)
    return re.sub(r"^[^A-Za-z0-9]+", "", cleaned).rstrip("-.")[:128]


def default_stream_id(uri: str) -> str:
    """A stream id from a location, derived as manifests derive theirs: the scenario name or the file stem."""
    return clean_stream_id(stream_name(uri)) or "stream"
