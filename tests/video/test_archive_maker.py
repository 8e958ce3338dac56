import numpy as np
from PIL import Image

from odist.cli import main
from odist.models.teachers.replay import label_filename
from odist.video.archive import ArchiveSource
from odist.video.manifest import load_streams


def test_archive_has_clips_labels_and_a_manifest_odist_run_reads(tmp_path, capsys):
    out = tmp_path / "archive"
    assert main(["synth", str(out), "--scenarios", "static_easy", "traffic", "--cameras", "2", "--frames", "6",
                 "--width", "64", "--height", "48"]) == 0
    assert "manifest: " in capsys.readouterr().out
    specs = load_streams(str(out / "manifest.jsonl"))
    assert [s.stream_id for s in specs] == ["static_easy-000", "static_easy-001", "traffic-000", "traffic-001"]
    for spec in specs:
        assert spec.teacher == f"replay:{spec.labels}"
        assert sum(1 for _ in ArchiveSource(spec.uri)) == 6
        labels = [np.array(Image.open(tmp_path / "archive" / spec.stream_id / "labels" / label_filename(i)))
                  for i in range(6)]
        assert all(label.shape == (48, 64) and label.max() < 4 for label in labels)  # class ids at frame size


def test_unknown_scenario_is_a_one_line_error(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "a"), "--scenarios", "nope"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_moving_camera_scenarios_and_options_are_written_under_clean_stream_ids(tmp_path, capsys):
    out = tmp_path / "archive"
    assert main(["synth", str(out), "--scenarios", "ptz_tour", "traffic+shake", "--frames", "3",
                 "--width", "64", "--height", "48"]) == 0
    specs = load_streams(str(out / "manifest.jsonl"))
    assert [s.stream_id for s in specs] == ["ptz_tour-000", "traffic-shake-000"]
    assert all(sum(1 for _ in ArchiveSource(spec.uri)) == 3 for spec in specs)
