import pytest

from odist.errors import StorageError
from odist.storage.objectstore import LocalStore, open_store


def test_put_get_list_delete(store):
    store.put("a/b/one.bin", b"1")
    store.put("a/two.bin", b"22")
    store.put("other.bin", b"3")
    assert store.get("a/two.bin") == b"22"
    assert store.list("a/") == ["a/b/one.bin", "a/two.bin"]
    assert store.exists("other.bin") and not store.exists("nope.bin")
    store.delete("a/two.bin")
    store.delete("a/two.bin")  # deleting twice is fine
    assert store.list("a/") == ["a/b/one.bin"]
    assert store.get_or_none("nope.bin") is None


def test_missing_object_names_the_uri(store):
    with pytest.raises(StorageError, match=r"nope\.bin") as info:
        store.get("nope.bin")
    assert info.value.missing or "does not exist" in str(info.value)


@pytest.mark.parametrize("read", [lambda store, key: store.get(key), lambda store, key: store.stat(key),
                                  lambda store, key: store.open_read(key).read()],
                         ids=["get", "stat", "open_read"])
def test_every_store_reports_a_missing_object_the_same_way(store, read):
    with pytest.raises(StorageError) as info:
        read(store, "a/nope.bin")
    assert info.value.missing
    assert info.value.what == f"{store.url('a/nope.bin')} does not exist"


def test_open_store_schemes(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    with pytest.raises(StorageError, match="unsupported"):
        open_store("gs://bucket/x")
    with pytest.raises(StorageError, match="no bucket"):
        open_store("s3:///x")


@pytest.mark.parametrize("bucket", ["Bad_Bucket!", "a b", "x" * 256])
def test_an_invalid_bucket_name_is_one_line_before_any_request(bucket):
    with pytest.raises(StorageError, match="names an invalid S3 bucket") as refused:
        open_store(f"s3://{bucket}/runs")
    assert "\n" not in str(refused.value) and "lowercase letters, digits" in refused.value.fix
