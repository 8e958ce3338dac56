"""A run root is empty, new, or an odist run: odist never writes into a folder or prefix holding other things."""

from __future__ import annotations

from odist.errors import OutputError
from odist.storage.documents import RUN_DOCUMENTS
from odist.storage.layout import STREAMS
from odist.storage.objectstore import LocalStore, ObjectStore


def check_run_root(store: ObjectStore) -> None:
    """``OutputError`` when ``store`` holds objects but no odist run (its ``run.json`` or ``streams/``)."""
    if any(store.exists(name) for name in RUN_DOCUMENTS):
        return
    if isinstance(store, LocalStore):  # one look at the folder, not a walk of a possibly large tree
        if not store.root.is_dir():
            return
        names = [entry.name for entry in store.root.iterdir() if not entry.name.startswith(".")]
        foreign = [name for name in names if name != STREAMS]
    else:
        keys = store.list()
        foreign = [key for key in keys if not key.startswith(f"{STREAMS}/")]
        names = keys
    if names and foreign:
        shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(f"--out {store.uri} is not empty and holds no odist run ({shown})",
                          "pass a new or empty folder or prefix, or the --out of an odist run")
