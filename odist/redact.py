"""Credentials never leave odist in the clear: every URL it shows or stores has its secrets masked.

Cameras and presigned objects are reached at URLs that carry secrets: userinfo
(``rtsp://admin:PASSWORD@cam-17/stream``) and signed or tokenised query strings
(``?X-Amz-Signature=...``, ``?token=...``). ``redact`` masks them in any text
(``rtsp://admin:***@cam-17/stream``) and ``redact_value`` in any JSON-like value; the object store's
JSON documents, the CLI's output, log records and error messages all pass through them.

Secrets that do not sit in a URL (a camera's ``credentials: env:NAME`` or ``file:PATH``) are
``remember``-ed when they are read, and masked wherever they later appear.

``install`` makes a process safe: it masks every log record (message, arguments and traceback) and,
with ``streams=True``, everything written to ``sys.stdout`` / ``sys.stderr``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry a secret: AWS/GCS/Azure signatures and credentials, tokens, passwords, keys.
SECRET_PARAMS = (
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    "signature", "sig", "token", "access_token", "auth", "authorization", "password", "passwd", "pwd",
    "pass", "secret", "key", "apikey", "api_key", "api-key", "client_secret", "jwt",
)
# A URL runs from its scheme to the next blank, quote or angle bracket. Its userinfo ends at the URL's LAST
# ``@``: a password may hold ``@``, ``#``, ``/``, ``?`` or ``%`` unencoded, so no character of it ends the mask.
_URL = re.compile(r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^\s'\"<>]*)")
_NO_CREDENTIALS = frozenset({"file", "s3"})  # odist's own locations: an ``@`` in them is part of a path
_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>" + "|".join(re.escape(p) for p in SECRET_PARAMS) + r")="
                    r"(?P<value>[^&;#\s'\"<>]*)", re.IGNORECASE)
_remembered: set[str] = set()
_lock = threading.Lock()
_MIN_REMEMBERED = 8  # shorter ones would mask ordinary words (a URL's password is masked at any length)


def redact(text: str) -> str:
    """``text`` with every URL's password (or bare userinfo token), secret query values and remembered secret
    masked as ``***``."""
    if not isinstance(text, str) or not text:
        return text
    if "://" in text and "@" in text:
        text = _URL.sub(_mask_url, text)
    if "=" in text:
        text = _PARAM.sub(lambda m: f"{m['lead']}{m['name']}={MASK if m['value'] else ''}", text)
    for secret in _secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _mask_url(match: re.Match[str]) -> str:
    split = split_userinfo(match[0])
    if split is None:
        return match[0]
    scheme, user, _, rest = split
    return f"{scheme}://{user}:{MASK}@{rest}" if user is not None else f"{scheme}://{MASK}@{rest}"


def split_userinfo(url: str) -> tuple[str, str | None, str, str] | None:
    """``(scheme, user, secret, rest)`` of a URL that carries credentials (``user`` None: a bare token), else None.

    The secret is everything from the first ``:`` after the user name (which holds no ``/``, ``?`` or ``#``) to
    the URL's last ``@``, however it is spelled; ``rest`` is what follows that ``@`` (host, port, path, query).
    An ``@`` in a path, query or fragment is taken for the end of a credential too: a mask too many rather than a
    password shown. ``file://`` and ``s3://`` locations carry no credentials.
    """
    scheme, sep, tail = url.partition("://")
    at = tail.rfind("@")
    if not sep or at < 0 or scheme.lower() in _NO_CREDENTIALS:
        return None
    userinfo, rest = tail[:at], tail[at + 1:]
    end = min((i for i in (userinfo.find(c) for c in "/?#") if i >= 0), default=len(userinfo))
    colon = userinfo.find(":")
    if 0 <= colon < end:
        return scheme, userinfo[:colon], userinfo[colon + 1:], rest
    return scheme, None, userinfo, rest


def strip_userinfo(url: str) -> str:
    """``url`` without its credentials (for names derived from it: a stream id, a file name)."""
    split = split_userinfo(url)
    return url if split is None else f"{split[0]}://{split[3]}"


def redact_value(value: Any) -> Any:
    """``value`` with ``redact`` applied to every string value in it, recursively (keys are odist's own names)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def remember(secret: str | None) -> None:
    """Mask ``secret`` (and its URL-encoded form) wherever it appears from now on, in this process."""
    if not secret or len(secret) < _MIN_REMEMBERED:
        return
    with _lock:
        _remembered.update({secret, quote(secret, safe="")})


def remember_url(url: str) -> None:
    """Remember the password (or bare token) in ``url``'s userinfo (``split_userinfo``), decoded and as written."""
    split = split_userinfo(url.strip()) if isinstance(url, str) else None
    if split is None:
        return
    secret = split[2]
    remember(secret)
    remember(unquote(secret))


def _secrets() -> list[str]:
    with _lock:
        return sorted(_remembered, key=len, reverse=True)


# -- credentials kept apart from the URL -------------------------------------------------------------


def read_credentials(spec: str, where: str) -> str:
    """The ``USER:PASSWORD`` that ``env:NAME`` or ``file:PATH`` names (remembered as secret), or a ConfigError."""
    from odist.errors import ConfigError

    kind, sep, name = spec.partition(":")
    if kind == "env" and sep and name:
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(f"{where}: credentials env:{name} is not set in the environment",
                              f"export {name}=USER:PASSWORD where the camera runs")
    elif kind == "file" and sep and name:
        try:
            value = Path(name).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"{where}: credentials file {name} cannot be read ({exc.strerror})",
                              "write USER:PASSWORD into that file (readable by odist only)") from None
    else:
        raise ConfigError(f"{where}: credentials {redact(spec)!r} is not env:NAME or file:PATH",
                          "write e.g. credentials: env:CAM17_AUTH (holding USER:PASSWORD)")
    value = value.strip()
    if not value:
        raise ConfigError(f"{where}: credentials {spec} are empty", "give them as USER:PASSWORD")
    user, _, password = value.partition(":")
    remember(password or user)
    remember(value)
    return value


def with_credentials(url: str, credentials: str | None) -> str:
    """``url`` with ``credentials`` (``USER:PASSWORD``, or a bare token) as its userinfo, percent-encoded."""
    if not credentials:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user, sep, password = credentials.partition(":")
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if sep else "")
    remember(quote(password, safe="") if sep else quote(user, safe=""))
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


# -- the process: log records and standard streams ---------------------------------------------------


class _RedactingStream:
    """A text stream that masks secrets in everything written to it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_installed = False


def install(*, streams: bool = False) -> None:
    """Mask secrets in every log record of this process (and, with ``streams``, in ``sys.stdout``/``stderr``)."""
    global _installed
    if streams:
        if not isinstance(sys.stdout, _RedactingStream):
            sys.stdout = _RedactingStream(sys.stdout)
        if not isinstance(sys.stderr, _RedactingStream):
            sys.stderr = _RedactingStream(sys.stderr)
    if _installed:
        return
    _installed = True
    factory = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(redacting_factory)
