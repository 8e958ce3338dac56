"""Commands that would do nothing useful, or write where they must not, refuse in one line with exit 2."""

from __future__ import annotations

from odist.cli import main


def _error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_live_with_no_valid_camera_exits_2(tmp_path, capsys):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("- id: a\n  url: ftp://cam/stream\n- id: b\n")
    assert main(["live", str(cameras), "--out", str(tmp_path / "run"), "--teacher", "maskrcnn"]) == 2
    line = _error(capsys)
    assert "no valid camera" in line and "entry 1" in line
    assert not (tmp_path / "run").exists()


def _foreign(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"not odist's")
    return folder


def test_distill_refuses_a_non_empty_out_that_is_not_a_run(tmp_path, capsys):
    folder = _foreign(tmp_path)
    assert main(["distill", "synthetic:traffic", "--out", str(folder), "--frames", "4", "--quiet"]) == 2
    line = _error(capsys)
    assert "not empty and holds no odist run" in line and "holiday.jpg" in line
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]


def test_run_refuses_a_non_empty_out_that_is_not_a_run(tmp_path, capsys):
    folder = _foreign(tmp_path)
    assert main(["run", "synthetic:traffic", "--out", str(folder), "--frames", "4", "--quiet"]) == 2
    assert "not empty and holds no odist run" in _error(capsys)
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]


def test_an_existing_run_and_an_empty_folder_are_accepted(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--frames", "4", "--width", "48", "--height", "32", "--set", "student.width=0.25", "--quiet"]
    assert main(["distill", "synthetic:traffic", "--out", str(empty), *args]) == 0
    assert main(["distill", "synthetic:static_easy", "--out", str(empty), *args]) == 0


def test_a_store_outage_while_failing_keeps_the_first_error(tmp_path, capsys, monkeypatch):
    from odist.distill.runner import StreamRunner
    from odist.errors import InputError, StorageError
    from odist.storage.layout import StreamArea

    def broken_run(self, *args, **kwargs):
        raise InputError("frame 3 of the input cannot be decoded", "check the video")

    def unwritable(self, error):
        raise StorageError(f"cannot put {self.key('failed.json')}: endpoint unreachable")

    monkeypatch.setattr(StreamRunner, "run", broken_run)
    monkeypatch.setattr(StreamArea, "fail", unwritable)
    args = ["--frames", "4", "--width", "48", "--height", "32", "--set", "student.width=0.25", "--quiet"]
    assert main(["distill", "synthetic:traffic", "--out", str(tmp_path / "run"), *args]) == 2
    line = _error(capsys)
    assert "frame 3 of the input cannot be decoded" in line and "failed.json could not be written" in line
