import pytest

from odist.errors import StorageError
from odist.storage.local_store import LocalStore


class _FailsOn(LocalStore):
    """A local store whose put of ``bad`` keys fails; the others are written."""

    def put(self, key, data):
        if key.startswith("bad"):
            raise StorageError(f"cannot write {key}", "retry")
        super().put(key, data)


def test_put_many_writes_every_object_and_raises_the_first_error_once_all_ended(tmp_path):
    store = _FailsOn(tmp_path)
    store.put_many([("a/x", b"1"), ("b/y", b"2"), ("c", b"3")])
    assert [store.get(key) for key in ("a/x", "b/y", "c")] == [b"1", b"2", b"3"]
    with pytest.raises(StorageError, match="cannot write bad1"):
        store.put_many([("d", b"4"), ("bad1", b"x"), ("bad2", b"y"), ("e", b"5")])
    assert store.get("d") == b"4" and store.get("e") == b"5"  # the others were not abandoned
    store.put_many([])
    store.put_many([("f", b"6")])
    assert store.get("f") == b"6"


def test_put_many_works_in_a_child_forked_after_it_was_used(tmp_path):
    import multiprocessing

    store = LocalStore(tmp_path)
    store.put_many([("before/a", b"1"), ("before/b", b"2")])  # the parent's threads are started
    child = multiprocessing.get_context("fork").Process(
        target=store.put_many, args=([("child/a", b"3"), ("child/b", b"4")],), daemon=True)
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert store.get("child/a") == b"3" and store.get("child/b") == b"4"
