"""A committed object that has gone missing: ``ls``, ``report`` and a resume name the commit and the missing key,
say what to do and exit 2, with no traceback."""

from __future__ import annotations

import pytest

from odist.cli import main
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store

RUN = ["--frames", "8", "--segment-frames", "4", "--width", "48", "--height", "32", "--set", "student.width=0.25",
       "--set", "threads=1", "--set", "distill.max_updates=1", "--quiet"]


@pytest.fixture(params=["records", "masks"])
def damaged(request, tmp_path):
    """A finished run whose first segment's records (or masks) object was deleted: (run root, missing key)."""
    out = tmp_path / "run"
    assert main(["distill", "synthetic:traffic", "--out", str(out), *RUN]) == 0
    area = StreamArea(open_store(str(out)), "traffic")
    first = area.commits()[0]
    key = first.records if request.param == "records" else first.masks
    area.store.delete(key)
    return out, key.rsplit("/", 2)[-2] + "/" + key.rsplit("/", 1)[-1]


def _one_line(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return captured.out, lines[0]


def test_ls_marks_the_stream_damaged_and_exits_2(damaged, capsys):
    out, missing = damaged
    capsys.readouterr()
    assert main(["ls", str(out)]) == 2
    stdout, err = _one_line(capsys)
    assert "damaged" in stdout and "commits/000000.json" in stdout and missing in stdout
    assert "restore" in err


def test_report_names_the_commit_and_the_missing_key(damaged, capsys, tmp_path):
    out, missing = damaged
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 2
    _, err = _one_line(capsys)
    assert "commits/000000.json" in err and missing in err and "--overwrite" in err


def test_resume_refuses_a_stream_with_missing_frames(damaged, capsys):
    out, missing = damaged
    area = StreamArea(open_store(str(out)), "traffic")
    area.store.delete(area.key("summary.json"))
    capsys.readouterr()
    assert main(["distill", "synthetic:traffic", "--out", str(out), *RUN, "--resume", "--frames", "12"]) == 2
    _, err = _one_line(capsys)
    assert "commits/000000.json" in err and missing in err and "--overwrite" in err
    assert StreamArea(open_store(str(out)), "traffic").last_commit().next_frame_index == 8


def test_resume_refuses_a_missing_last_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["distill", "synthetic:traffic", "--out", str(out), *RUN]) == 0
    area = StreamArea(open_store(str(out)), "traffic")
    area.store.delete(area.key("summary.json"))
    area.store.delete(area.last_commit().checkpoint)
    capsys.readouterr()
    assert main(["distill", "synthetic:traffic", "--out", str(out), *RUN, "--resume", "--frames", "12"]) == 2
    _, err = _one_line(capsys)
    assert "commits/000001.json" in err and "checkpoints/" in err


def test_render_names_the_commit_and_the_missing_key(damaged, capsys, tmp_path):
    out, missing = damaged
    capsys.readouterr()
    assert main(["render", str(out), "--stream", "traffic", "--out", str(tmp_path / "o.mp4"), "--quiet"]) == 2
    _, err = _one_line(capsys)
    assert "commits/000000.json" in err and missing in err
    assert not (tmp_path / "o.mp4").exists()


def test_damaged_streams_names_each_damaged_stream_once_and_skips_whole_ones(damaged, tmp_path):
    from odist.storage.integrity import damaged_streams

    out, missing = damaged
    store = open_store(str(out))
    assert main(["distill", "synthetic:static_easy", "--out", str(out), *RUN]) == 0
    found = damaged_streams(store, ["traffic", "static_easy"])
    assert list(found) == ["traffic"] and missing in found["traffic"] and "\n" not in found["traffic"]
    store.put(StreamArea(store, "static_easy").key("summary.json"), b"{cut")
    assert "summary.json is not valid JSON" in damaged_streams(store, ["static_easy"])["static_easy"]


def test_run_reports_a_done_stream_with_missing_objects_as_failed_not_skipped(damaged, capsys):
    """Every stream is done (or damaged): nothing is left to run, so no Ray starts."""
    out, missing = damaged
    capsys.readouterr()
    assert main(["run", "synthetic:traffic", "--out", str(out), *RUN]) == 1
    stdout = capsys.readouterr().out
    assert "0 done, 1 failed, 0 skipped" in stdout and missing in stdout, stdout
