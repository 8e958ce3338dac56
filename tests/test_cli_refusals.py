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
    assert main(["live", str(cameras), "--out", str(tmp_path / "run"), "--teacher", "maskrcnn",
                 "--set", "teacher.weights=random"]) == 2
    line = _error(capsys)
    assert "no valid camera" in line and "entry 1" in line
    assert not (tmp_path / "run").exists()


def _one_camera(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("- id: a\n  url: udp://127.0.0.1:5999\n")
    return cameras


def test_live_with_the_oracle_or_without_cached_weights_offline_stops_before_ray_starts(tmp_path, capsys,
                                                                                       monkeypatch):
    import ray

    out = str(tmp_path / "run")
    assert main(["live", str(_one_camera(tmp_path)), "--out", out, "--teacher", "oracle"]) == 2
    line = _error(capsys)
    assert "oracle teacher needs synthetic ground truth" in line and "--set teacher.weights=PATH_OR_URI" in line
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the default teacher, with an empty cache, offline
    monkeypatch.setattr("odist.models.teachers.maskrcnn.pretrained_url", lambda arch: "http://127.0.0.1:9/coco.pth")
    assert main(["live", str(_one_camera(tmp_path)), "--out", out]) == 2
    assert "Mask R-CNN's COCO weights (coco.pth) are not in torch's cache" in _error(capsys)
    assert not ray.is_initialized() and not (tmp_path / "run").exists()


def test_live_with_missing_weights_or_a_replay_teacher_is_refused_before_ray_starts(tmp_path, capsys):
    import ray

    cameras = str(_one_camera(tmp_path))
    assert main(["live", cameras, "--out", str(tmp_path / "run"), "--set", f"teacher.weights={tmp_path}/no.pt"]) == 2
    assert "Mask R-CNN weights file" in _error(capsys)
    assert main(["live", cameras, "--out", str(tmp_path / "run"), "--teacher", f"replay:{tmp_path}"]) == 2
    assert "replay teacher" in _error(capsys)
    assert not ray.is_initialized() and not (tmp_path / "run").exists()


def test_live_with_weights_but_a_missing_camera_list_is_refused_before_ray_starts(tmp_path, capsys):
    import ray

    weights = tmp_path / "maskrcnn.pt"
    weights.write_bytes(b"checked for existence only")
    assert main(["live", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "run"),
                 "--set", f"teacher.weights={weights}"]) == 2
    err = capsys.readouterr().err
    assert "camera list" in err and "does not exist" in err
    assert not ray.is_initialized() and not (tmp_path / "run").exists()


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
