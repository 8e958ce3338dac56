"""``odist distill`` and ``odist ls`` against a run root on local disk and on the loopback S3 endpoint."""

import pytest

from odist.cli import main
from odist.errors import StorageError
from odist.storage.layout import StreamArea
from odist.storage.reader import read_stream_table, run_dataset

ARGS = ["--width", "96", "--height", "64", "--frames", "20", "--segment-frames", "8", "--quiet",
        "--set", "student.width=0.25", "--set", "threads=1"]


def test_distill_writes_committed_segments_and_ls_reports_them(run_uri, store, capsys):
    assert main(["distill", "synthetic:static_easy", "--out", run_uri, "--evaluate", *ARGS]) == 0
    assert main(["distill", "synthetic:traffic", "--out", run_uri, "--max-frames", "12", *ARGS]) == 0
    assert store.exists("run.json")
    area = StreamArea(store, "static_easy")
    assert [(c.first_frame, c.last_frame) for c in area.commits()] == [(0, 7), (8, 15), (16, 19)]
    assert read_stream_table(area).column("frame_index").to_pylist() == list(range(20))
    assert run_dataset(store).count_rows() == 32
    capsys.readouterr()
    assert main(["ls", run_uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["static_easy", "done", "20"]
    assert lines[2].split()[:3] == ["traffic", "done", "12"]


def test_corrupt_committed_object_is_a_clear_error(run_uri, store):
    assert main(["distill", "synthetic:static_easy", "--out", run_uri, *ARGS]) == 0
    area = StreamArea(store, "static_easy")
    store.put(area.commits()[1].records, b"PAR1 not really parquet")
    with pytest.raises(StorageError, match="not readable Parquet"):
        read_stream_table(area)


def test_ls_of_an_empty_or_foreign_root_fails_clearly(run_uri, store, capsys):
    store.put("something/else.txt", b"hello")
    assert main(["ls", run_uri]) == 2
    assert "holds no odist streams" in capsys.readouterr().err


def test_missing_bucket_fails_the_run_with_one_line(s3_endpoint, capsys):
    code = main(["distill", "synthetic:static_easy", "--out", "s3://no-such-bucket-odist/run", *ARGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bucket no-such-bucket-odist does not exist" in err[0]


def test_overwrite_through_a_linked_stream_folder_is_refused_and_deletes_nothing(tmp_path, capsys):
    out, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    assert main(["distill", "synthetic:static_easy", "--out", str(out), "--stream-id", "first", *ARGS]) == 0
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("not odist's")
    (out / "streams" / "stream_id=cam").symlink_to(elsewhere, target_is_directory=True)
    capsys.readouterr()
    assert main(["distill", "synthetic:static_easy", "--out", str(out), "--stream-id", "cam", "--overwrite",
                 *ARGS]) == 2
    assert main(["ls", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and all("stream_id=cam is a link out of the run root" in line for line in err), err
    assert [p.name for p in elsewhere.iterdir()] == ["notes.txt"]
