"""Stream manifests and prefixes -> StreamSpecs (no Ray, no video decoding)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from odist.errors import InputError, StorageError
from odist.storage.objectstore import open_store
from odist.video.manifest import StreamSpec, clean_stream_id, load_streams

ROWS = [
    {"uri": "s3://videos/cams/north.mp4", "stream_id": "north", "labels": "s3://labels/north",
     "overrides": ["distill.max_updates=4", "teacher.batch_size=2"]},
    {"uri": "synthetic:traffic", "stream_id": None, "labels": None, "overrides": []},
    {"uri": "/data/clips/south gate.mkv", "stream_id": None, "labels": "/data/labels/south", "overrides": None},
]
EXPECTED = [
    StreamSpec("s3://videos/cams/north.mp4", "north", "s3://labels/north",
               ("distill.max_updates=4", "teacher.batch_size=2")),
    StreamSpec("synthetic:traffic", "traffic", None, ()),
    StreamSpec("/data/clips/south gate.mkv", "south-gate", "/data/labels/south", ()),
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _csv(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            cells = {k: ("" if v is None else ";".join(v) if isinstance(v, list) else v) for k, v in row.items()}
            writer.writerow(cells)
    return str(path)


def _parquet(path, rows):
    schema = pa.schema([("uri", pa.string()), ("stream_id", pa.string()), ("labels", pa.string()),
                        ("overrides", pa.list_(pa.string()))])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path)


WRITERS = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_each_format_round_trips(tmp_path, fmt):
    specs = load_streams(WRITERS[fmt](tmp_path / f"streams.{fmt}", ROWS))
    assert specs == EXPECTED
    assert specs[0].teacher == "replay:s3://labels/north" and specs[1].teacher is None


def test_ndjson_extension_blank_lines_and_replay_prefix(tmp_path):
    path = tmp_path / "m.ndjson"
    path.write_text('\n{"uri": "synthetic:static_easy", "labels": "replay:s3://b/l"}\n\n')
    assert load_streams(str(path)) == [StreamSpec("synthetic:static_easy", "static_easy", "s3://b/l")]


def test_default_ids_are_derived_and_cleaned(tmp_path):
    rows = [{"uri": "synthetic:nonstationary"}, {"uri": "s3://b/x/cam 7 (night).MP4"},
            {"uri": "file:///v/_lobby.ts"}, {"uri": "/v/clip.v2.mov"}]
    ids = [s.stream_id for s in load_streams(_jsonl(tmp_path / "m.jsonl", rows))]
    assert ids == ["nonstationary", "cam-7-night", "lobby", "clip.v2"]
    assert clean_stream_id("..a/b c__") == "a-b-c__"
    assert len(clean_stream_id("x" * 300)) == 128


def test_relative_locations_resolve_against_the_manifest_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = _jsonl(tmp_path / "sub" / "m.jsonl", [{"uri": "clips/a.mp4", "labels": "../labels/a"}])
    [spec] = load_streams(path)
    assert spec.uri == str(tmp_path / "sub" / "clips" / "a.mp4")
    assert spec.labels == str(tmp_path / "labels" / "a")


def test_bad_override_names_its_row(tmp_path):
    rows = [{"uri": "synthetic:traffic", "overrides": ["distill.max_updates=4"]},
            {"uri": "synthetic:static_easy", "overrides": ["distill.max_updates=4", "distill.lr=-1"]}]
    with pytest.raises(InputError, match=r"m\.jsonl line 2: override 'distill\.lr=-1' is invalid: .*distill\.lr"):
        load_streams(_jsonl(tmp_path / "m.jsonl", rows))
    with pytest.raises(InputError, match=r"m\.jsonl line 1: override 'nokey' is invalid"):
        load_streams(_jsonl(tmp_path / "m.jsonl", [{"uri": "synthetic:traffic", "overrides": ["nokey"]}]))
    with pytest.raises(InputError, match=r"line 1: overrides must be a list of strings"):
        load_streams(_jsonl(tmp_path / "m.jsonl", [{"uri": "synthetic:traffic", "overrides": "distill.lr=1"}]))


def test_bad_override_in_csv_names_its_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("uri,overrides\nsynthetic:traffic,distill.max_updates=2; distill.lr=0.1\n"
                    "synthetic:static_easy,distill.no_such_key=1\n")
    with pytest.raises(InputError, match=r"m\.csv line 3: override 'distill\.no_such_key=1' is invalid"):
        load_streams(str(path))
    path.write_text("uri,overrides\nsynthetic:traffic,distill.max_updates=2; distill.lr=0.1\n")
    assert load_streams(str(path))[0].overrides == ("distill.max_updates=2", "distill.lr=0.1")


@pytest.mark.parametrize("fmt,where", [("jsonl", "line 2"), ("csv", "line 2"), ("parquet", "row 1")])
def test_unknown_key_names_the_row(tmp_path, fmt, where):
    """JSONL rows differ, so the second line is named; a CSV or Parquet column is in every row."""
    rows = [{"uri": "synthetic:traffic", "camera": "a"}, {"uri": "synthetic:static_easy", "camera": "b"}]
    if fmt == "jsonl":
        del rows[0]["camera"]
    path = tmp_path / f"m.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        WRITERS[fmt](path, rows)
    with pytest.raises(InputError, match=rf"m\.{fmt} {where} has unknown key\(s\) 'camera' \(use only uri"):
        load_streams(str(path))


def test_duplicate_ids_name_both_rows(tmp_path):
    rows = [{"uri": "/a/cam.mp4"}, {"uri": "synthetic:traffic"}, {"uri": "/b/cam.mkv"}]
    with pytest.raises(InputError, match=r"stream id 'cam' of .*m\.jsonl line 3 is already used by .*m\.jsonl line 1"):
        load_streams(_jsonl(tmp_path / "m.jsonl", rows))
    rows[2]["stream_id"] = "cam-b"
    assert [s.stream_id for s in load_streams(_jsonl(tmp_path / "m.jsonl", rows))] == ["cam", "traffic", "cam-b"]


@pytest.mark.parametrize("name,text", [("m.jsonl", "\n\n"), ("m.csv", "uri,stream_id\n"), ("m.csv", "")])
def test_empty_manifest_is_an_error(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=rf"{name} lists no streams"):
        load_streams(str(tmp_path / name))


def test_empty_parquet_manifest_is_an_error(tmp_path):
    path = _parquet(tmp_path / "m.parquet", [])
    with pytest.raises(InputError, match="lists no streams"):
        load_streams(path)


@pytest.mark.parametrize("line,message", [
    ('{"uri": ', r"line 2 is not valid JSON"),
    ('["synthetic:traffic"]', r"line 2 is not a JSON object"),
    ('{"stream_id": "x"}', r"line 2 has no uri"),
    ('{"uri": "rtsp://cam/live"}', r"line 2: uri 'rtsp://cam/live' has an unsupported scheme"),
    ('{"uri": "synthetic:nope"}', r"line 2: unknown synthetic scenario 'nope'"),
    ('{"uri": "/v/a.mp4", "stream_id": "-bad id"}', r"line 2: stream id '-bad id' is not usable"),
    ('{"uri": "/v/+++.mp4"}', r"line 2: no usable stream id can be derived from '\+\+\+'"),
    ('{"uri": "/v/a.mp4", "stream_id": 7}', r"line 2: stream_id must be a string"),
])
def test_bad_rows_are_one_line_errors_naming_the_line(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"uri": "synthetic:traffic"}\n' + line + "\n")
    with pytest.raises(InputError, match=message) as info:
        load_streams(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_csv_with_a_wrong_field_count_names_the_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("uri,stream_id\nsynthetic:traffic,t\n/v/a.mp4,a,extra\n")
    with pytest.raises(InputError, match=r"m\.csv line 3 has 3 fields but the header has 2"):
        load_streams(str(path))


def test_unreadable_parquet_and_missing_manifest(tmp_path):
    (tmp_path / "m.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"m\.parquet is not a readable Parquet file"):
        load_streams(str(tmp_path / "m.parquet"))
    with pytest.raises(StorageError, match=r"nope\.jsonl does not exist"):
        load_streams(str(tmp_path / "nope.jsonl"))


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_local_folder_prefix_finds_nested_videos(tmp_path):
    root = tmp_path / "videos"
    _touch(root, "b.mp4", "a.MKV", "notes.txt", "north/cam1.webm", "north/deep/cam1.ts", "south/cam1.mpeg")
    specs = load_streams(str(root))
    assert [(s.stream_id, s.uri) for s in specs] == [
        ("a", str(root / "a.MKV")), ("b", str(root / "b.mp4")),
        ("north-cam1", str(root / "north/cam1.webm")), ("north-deep-cam1", str(root / "north/deep/cam1.ts")),
        ("south-cam1", str(root / "south/cam1.mpeg"))]
    assert all(s.labels is None and s.overrides == () for s in specs)
    assert [s.stream_id for s in load_streams(f"file://{root}/")] == [s.stream_id for s in specs]


def test_folder_without_videos_and_missing_paths_are_errors(tmp_path):
    _touch(tmp_path / "v", "readme.txt")
    with pytest.raises(InputError, match=r"no video files \(.mp4 .* under .*v"):
        load_streams(str(tmp_path / "v"))
    with pytest.raises(InputError, match=r"no video files .* match .*missing"):
        load_streams(str(tmp_path / "missing"))


def test_local_glob_and_single_file(tmp_path, monkeypatch):
    _touch(tmp_path / "videos", "x.mp4", "y.mp4", "z.mkv", "skip.txt", "sub/w.mp4")
    monkeypatch.chdir(tmp_path)
    specs = load_streams("videos/*.mp4")
    assert [(s.stream_id, s.uri) for s in specs] == [("x", str(tmp_path / "videos/x.mp4")),
                                                     ("y", str(tmp_path / "videos/y.mp4"))]
    assert [s.stream_id for s in load_streams(str(tmp_path / "videos/**/*"))] == ["sub-w", "x", "y", "z"]
    assert load_streams("videos/z.mkv") == [StreamSpec(str(tmp_path / "videos/z.mkv"), "z")]
    assert load_streams("synthetic:traffic") == [StreamSpec("synthetic:traffic", "traffic")]


def test_s3_prefix_lists_videos(s3_bucket):
    store = open_store(f"s3://{s3_bucket}")
    for key in ("in/cam1.mp4", "in/north/cam1.mov", "in/readme.txt", "other/cam9.mp4"):
        store.put(key, b"")
    specs = load_streams(f"s3://{s3_bucket}/in/")
    assert specs == [StreamSpec(f"s3://{s3_bucket}/in/cam1.mp4", "cam1"),
                     StreamSpec(f"s3://{s3_bucket}/in/north/cam1.mov", "north-cam1")]
    with pytest.raises(InputError, match=rf"no video files .* under s3://{s3_bucket}/empty/"):
        load_streams(f"s3://{s3_bucket}/empty/")
    with pytest.raises(InputError, match="globs work on local paths only"):
        load_streams(f"s3://{s3_bucket}/in/*.mp4")


def test_s3_manifest(s3_bucket, tmp_path):
    rows = [{"uri": "clips/a.mp4", "labels": "labels/a", "overrides": ["distill.max_updates=2"]},
            {"uri": f"s3://{s3_bucket}/elsewhere/b.mp4", "stream_id": "b"}]
    local = _jsonl(tmp_path / "m.jsonl", rows)
    open_store(f"s3://{s3_bucket}/fleet").put("streams.jsonl", Path(local).read_bytes())
    specs = load_streams(f"s3://{s3_bucket}/fleet/streams.jsonl")
    assert specs == [
        StreamSpec(f"s3://{s3_bucket}/fleet/clips/a.mp4", "a", f"s3://{s3_bucket}/fleet/labels/a",
                   ("distill.max_updates=2",)),
        StreamSpec(f"s3://{s3_bucket}/elsewhere/b.mp4", "b")]
    with pytest.raises(StorageError, match=r"missing\.csv does not exist"):
        load_streams(f"s3://{s3_bucket}/fleet/missing.csv")


def test_paths_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _jsonl(tmp_path / "m.jsonl", [{"uri": "a.mp4"}])
    assert os.path.isabs(load_streams("m.jsonl")[0].uri)
