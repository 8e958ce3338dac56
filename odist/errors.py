"""Error types that carry what failed and how to fix it.

The CLI prints an ``OdistError`` as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from odist.redact import redact

_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
_CLASS_REPR = re.compile(r"<class '(?:builtins\.)?([\w.]+)'>")
_LINE_BREAK = re.compile(r"\s*\n\s*")


def plain(text: str) -> str:
    """``text`` for people, on one line: its URLs' secrets masked, Python reprs gone (``<class 'float'>`` ->
    ``float``, ``<_io.BytesIO object at 0x...>`` -> ``in-memory data``) and line breaks (a library's multi-line
    message) joined with a space."""
    return _LINE_BREAK.sub(" ", _CLASS_REPR.sub(r"\1", _OBJECT_REPR.sub("in-memory data", redact(text)))).strip()


class OdistError(Exception):
    """Base class of every user-facing odist error."""

    exit_code = 2

    def __init__(self, what: str, fix: str | None = None, *, keys: Sequence[str] = ()) -> None:
        what, fix = plain(what), None if fix is None else plain(fix)  # never a secret, never a Python repr
        self.what = what
        self.fix = fix
        self.keys = tuple(keys)  # the config keys and keyword arguments the message names, as it spells them
        super().__init__(f"{what} ({fix})" if fix else what)

    def shown(self, names: Mapping[str, str]) -> str:
        """The message with each of its ``keys`` that ``names`` has written as that name instead (the CLI shows
        ``distill.max_frames`` as ``--max-frames``); a key it does not name stays as it is."""
        text = str(self)
        for key in sorted(self.keys, key=len, reverse=True):
            if key in names:
                text = text.replace(key, names[key])
        return text


class ConfigError(OdistError):
    """A configuration value, file or override is invalid."""


class InputError(OdistError):
    """A video, scenario or label input cannot be read or is unsuitable."""


class TeacherError(OdistError):
    """A teacher cannot be built or cannot label a frame."""


class CheckpointError(OdistError):
    """A student checkpoint is missing, corrupt or does not fit the configuration."""


class OutputError(OdistError):
    """Results cannot be written to the requested location."""


class LeaseError(OutputError):
    """Another writer holds a stream's lease, or this writer lost it: this one writes nothing to the stream."""


class StorageError(OdistError):
    """An object store location cannot be reached, read or written."""

    def __init__(self, what: str, fix: str | None = None, *, missing: bool = False, keys: Sequence[str] = ()) -> None:
        super().__init__(what, fix, keys=keys)
        self.missing = missing


def check_config(ok: bool, key: str, expected: str, *also: str) -> None:
    """Unless ``ok``, a ``ConfigError`` naming the config ``key`` and what it expects (``also``: other keys that
    ``expected`` names): every config section's validation says it this one way."""
    if not ok:
        raise ConfigError(f"invalid config value for {key}", f"expected {expected}", keys=(key, *also))


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the job stops, its commits stand, the CLI exits 143 with one line."""


def raise_terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler that raises ``Terminated`` in the main thread (and remembers it: code that turns a
    ``KeyboardInterrupt`` into a new one, as Ray's waits do, loses the type)."""
    _signalled.append(signum)
    raise Terminated


def was_terminated() -> bool:
    """Whether ``raise_terminated`` has run in this process."""
    return bool(_signalled)


_signalled: list[int] = []
