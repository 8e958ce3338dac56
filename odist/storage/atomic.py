"""Write-then-rename, so a reader never sees a half-written file; files get the permissions ``open()`` would give."""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from odist.redact import redact_value


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    tmp = _written_beside(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _written_beside(path: Path, data: bytes) -> str:
    """A hidden temporary file beside ``path`` holding ``data``, synced, with the mode a plain ``open()`` gives;
    its path (nothing is left behind when writing it fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE & ~current_umask())  # mkstemp makes it owner-only; a plain open() would not
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


FILE_MODE = 0o666  # what open() asks for before the umask
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), else swapped and back."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def create_bytes_exclusive(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` only if nothing is there (a whole file, linked into place); False if something
    is: of writers racing to create one path, exactly one gets True."""
    tmp = _written_beside(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except FileNotFoundError:  # the writer at work swept our temporary file: it was there first
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def json_bytes(value: Any) -> bytes:
    """``value`` as strict, indented JSON (NaN and infinities become null; numpy scalars become numbers).

    Every string in it is ``redact``-ed: a stored document never holds a URL's password or signature.
    """
    text = json.dumps(finite_json(redact_value(value)), indent=2, sort_keys=True, default=_jsonable, allow_nan=False)
    return (text + "\n").encode()


def write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as :func:`json_bytes` to ``path`` atomically."""
    write_bytes_atomic(path, json_bytes(value))


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
