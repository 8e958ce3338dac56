"""Atomic writes give a file the permissions ``open()`` would: 0666 less the umask, never owner-only by accident."""

from __future__ import annotations

import os
import stat

import pytest

from odist.storage.atomic import current_umask, write_bytes_atomic
from odist.storage.objectstore import LocalStore


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    before = os.umask(0o022)
    os.umask(before)
    yield lambda mask: os.umask(mask)
    os.umask(before)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_a_written_file_honours_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    write_bytes_atomic(tmp_path / "a" / "doc.json", b"{}")
    with open(tmp_path / "plain", "wb"):
        pass
    mode = stat.S_IMODE((tmp_path / "a" / "doc.json").stat().st_mode)
    assert mode == 0o666 & ~mask == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_a_team_shares_a_run_folder_with_a_group_umask(tmp_path, umask):
    umask(0o002)
    store = LocalStore(tmp_path / "run")
    store.put("streams/stream_id=cam/summary.json", b"{}")
    store.put("report.html", b"<html></html>")
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "run").rglob("*") if path.is_file()}
    assert modes == {"summary.json": 0o664, "report.html": 0o664}
