"""The fleet's main job over an archive in object storage: ``odist run`` of an ``s3://`` manifest with relative
URIs, and of an ``s3://`` prefix, finishes every stream with the records of the same archive read from local disk;
``odist render`` and ``odist pretrain`` read the same objects."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from fast_teachers import FAST_MASKRCNN  # noqa: E402
from s3archive import synth_in_bucket  # noqa: E402

from odist.cli import main  # noqa: E402
from odist.storage.layout import StreamArea  # noqa: E402
from odist.storage.objectstore import open_store  # noqa: E402
from odist.storage.reader import read_stream_table  # noqa: E402

FRAMES = 12
TINY = ["--workers", "2", "--quiet", "--set", "student.width=0.25", "--set", "threads=1"]
TIMINGS = ["student_seconds", "teacher_seconds"]
STREAMS = ["static_easy-000", "traffic-000"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory, s3_endpoint) -> tuple[Path, str]:
    """``odist synth``'s archive on local disk and the same files under ``s3://BUCKET/archive``."""
    return synth_in_bucket(tmp_path_factory.mktemp("archive"), "odist-fleet-archive", ["static_easy", "traffic"],
                           FRAMES, 64, 48)


@pytest.fixture(scope="module", autouse=True)
def local_ray(s3_endpoint):
    """One local Ray for the module, started after the S3 endpoint's settings so that its workers see them."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _run(*args: str) -> str:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["run", *args, *TINY]) == 0, stdout.getvalue()
    return stdout.getvalue()


def _records(out: str, ids: list[str], drop: tuple[str, ...] | list[str] = ()) -> dict[str, list[dict]]:
    store = open_store(out)
    return {sid: read_stream_table(StreamArea(store, sid)).drop([*TIMINGS, *drop]).to_pylist() for sid in ids}


def test_a_manifest_in_s3_with_relative_uris_runs_as_the_local_archive(archive, tmp_path):
    local, remote = archive
    out = f"{remote.rsplit('/', 1)[0]}/runs/manifest"
    printed = _run(f"{remote}/manifest.jsonl", "--out", out, "--evaluate")
    assert "2 streams: 2 done, 0 failed" in printed
    _run(str(local / "manifest.jsonl"), "--out", str(tmp_path / "local"), "--evaluate")
    mine, theirs = _records(out, STREAMS), _records(str(tmp_path / "local"), STREAMS)
    assert mine == theirs and all(len(rows) == FRAMES for rows in mine.values())

    # the stream's own video, re-read from S3 to draw its masks
    rendered = tmp_path / "traffic.mp4"
    assert main(["render", out, "--stream", "traffic-000", "--out", str(rendered), "--quiet"]) == 0
    assert rendered.stat().st_size > 0


def test_an_s3_prefix_of_videos_runs_as_the_local_folder(archive, tmp_path):
    local, remote = archive
    out = f"{remote.rsplit('/', 1)[0]}/runs/prefix"
    ids = [f"{sid}-video" for sid in STREAMS]
    printed = _run(f"{remote}/", "--out", out, "--teacher", FAST_MASKRCNN, "--set", "teacher.weights=random")
    assert "2 streams: 2 done, 0 failed" in printed
    _run(str(local), "--out", str(tmp_path / "local"), "--teacher", FAST_MASKRCNN, "--set", "teacher.weights=random")
    unscored = ["miou", "miou_foreground"]  # NaN without --evaluate
    assert _records(out, ids, unscored) == _records(str(tmp_path / "local"), ids, unscored)


def test_pretrain_reads_videos_and_labels_from_s3(archive, tmp_path):
    out = tmp_path / "pretrained.pt"
    assert main(["pretrain", f"{archive[1]}/manifest.jsonl", "--out", str(out), "--epochs", "1", "--every", "4",
                 "--quiet", "--set", "student.width=0.25", "--set", "threads=1"]) == 0
    assert out.stat().st_size > 0
