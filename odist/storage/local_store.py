"""``LocalStore``: objects as files under a folder (plain paths, ``file://``); ``put`` writes a temporary name and
renames it, and no read, write or delete goes through a link out of the run root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from odist.errors import StorageError
from odist.storage.atomic import create_bytes_exclusive, write_bytes_atomic
from odist.storage.object_reader import ObjectInfo, local_info
from odist.storage.store import ObjectStore


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


def _changed(where: str, before: ObjectInfo, now: ObjectInfo) -> StorageError:
    return StorageError(f"{where} changed: it was {before.describe()}, it is now {now.describe()}",
                        "keep objects in place while a job reads them; run the stream again with --overwrite")
