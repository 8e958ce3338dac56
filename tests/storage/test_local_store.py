import pytest

from odist.errors import StorageError
from odist.storage.local_store import LocalStore


def test_a_local_sweep_removes_only_the_half_written_temporaries_under_its_folder(tmp_path):
    store = LocalStore(tmp_path)
    store.put("streams/a/records/0.parquet", b"whole")
    for folder in ("streams/a/records", "streams/b"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / ".summary.json.x1y2.tmp").write_bytes(b"half")
    (tmp_path / "streams/a/.hidden").write_bytes(b"not a temporary")
    assert store.sweep_temporaries("streams/a/") == ["streams/a/records/.summary.json.x1y2.tmp"]
    assert store.get("streams/a/records/0.parquet") == b"whole"
    assert (tmp_path / "streams/b/.summary.json.x1y2.tmp").exists() and (tmp_path / "streams/a/.hidden").exists()


def test_a_sweep_leaves_the_temporaries_of_skipped_folders_alone(tmp_path):
    # a lease is renewed from another thread while the stream is swept: its half-written renewal must stay
    store = LocalStore(tmp_path)
    for folder in ("streams/a/lease", "streams/a/records"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / ".000000001.json.x1y2.tmp").write_bytes(b"half")
    assert store.sweep_temporaries("streams/a/", skip=("streams/a/lease/",)) == [
        "streams/a/records/.000000001.json.x1y2.tmp"]
    assert (tmp_path / "streams/a/lease/.000000001.json.x1y2.tmp").exists()


def test_a_link_out_of_the_run_root_is_never_written_or_deleted_through(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    store = LocalStore(tmp_path / "run")
    store.put("streams/stream_id=a/summary.json", b"{}")
    (tmp_path / "run" / "streams" / "stream_id=cam").symlink_to(elsewhere, target_is_directory=True)
    for act in (lambda: store.list("streams/"), lambda: store.list("streams/stream_id=cam/"),
                lambda: store.delete("streams/stream_id=cam/precious.txt"),
                lambda: store.put("streams/stream_id=cam/x.json", b"{}"),
                lambda: store.sweep_temporaries("streams/stream_id=cam/")):
        with pytest.raises(StorageError, match=r"stream_id=cam is a link out of the run root"):
            act()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["precious.txt"]


def test_links_inside_the_run_root_and_a_linked_root_are_fine(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    store = LocalStore(tmp_path / "linked")
    store.put("streams/stream_id=a/summary.json", b"{}")
    (tmp_path / "real" / "streams" / "alias").symlink_to(tmp_path / "real" / "streams" / "stream_id=a")
    assert store.list("streams/") == ["streams/stream_id=a/summary.json"]  # the inner link is not followed
    store.delete("streams/stream_id=a/summary.json")
    assert store.list() == []

