import pytest

from odist.errors import StorageError
from odist.storage.objectstore import LocalStore, S3Store, open_store


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


def test_missing_bucket_is_a_clear_error(s3_endpoint):
    store = S3Store("no-such-bucket-odist", "p")
    with pytest.raises(StorageError, match="bucket no-such-bucket-odist does not exist"):
        store.put("k", b"x")


def test_denied_credentials_are_a_clear_error(s3_endpoint, s3_bucket, monkeypatch):
    import urllib.request

    def enforce_auth_after(count: str) -> None:
        request = urllib.request.Request(f"{s3_endpoint}/moto-api/reset-auth", method="POST", data=count.encode(),
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request).read()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAINVALIDINVALID00")
    enforce_auth_after("0")
    try:
        with pytest.raises(StorageError, match=f"access denied to s3://{s3_bucket}/p/k"):
            S3Store(s3_bucket, "p").put("k", b"x")
    finally:
        enforce_auth_after("inf")


def test_unreachable_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = S3Store("bucket", "p", attempts=2)
    with pytest.raises(StorageError, match=r"s3://bucket/p/k.*AWS_ENDPOINT_URL"):
        store.get("k")


def test_missing_credentials_are_named_as_such_not_the_network(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3 = pytest.importorskip("boto3")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session made earlier holds the credentials it found
    with pytest.raises(StorageError) as info:
        S3Store("bucket", "p", attempts=2).get("k")
    assert "credentials" in str(info.value) and "AWS_ACCESS_KEY_ID" in str(info.value)
    assert "network" not in str(info.value)


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
