import json

import numpy as np
import pytest

from odist.errors import OutputError
from odist.storage.masks import decode_mask
from odist.storage.results import ResultWriter, read_masks, read_records


def _record(i):
    return {"frame_index": i, "timestamp": i / 30, "keyframe": i % 8 == 0, "updates": 1, "stride": 8,
            "keyframe_accuracy": None, "student_seconds": 0.01, "teacher_seconds": 0.0, "miou": 0.5,
            "miou_foreground": float("nan")}


def test_segments_records_masks_and_summary_last(tmp_path):
    writer = ResultWriter(tmp_path / "out", segment_frames=4)
    masks = [np.full((6, 8), i % 3, np.uint8) for i in range(10)]
    for i, m in enumerate(masks):
        writer.add(_record(i), m)
    assert not (tmp_path / "out" / "summary.json").exists()
    writer.finish({"frames": 10, "miou": float("nan")})
    names = sorted(p.name for p in (tmp_path / "out" / "records").iterdir())
    assert names == ["part-000000-000003.parquet", "part-000004-000007.parquet", "part-000008-000009.parquet"]
    records = read_records(tmp_path / "out")
    assert records.column("frame_index").to_pylist() == list(range(10))
    stored = read_masks(tmp_path / "out").to_pylist()
    assert all(np.array_equal(decode_mask(r["data"], r["height"], r["width"]), masks[r["frame_index"]])
               for r in stored)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["miou"] is None and summary["schema_version"] == 1


def test_refuses_non_empty_folder_unless_overwrite(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(OutputError, match="--overwrite"):
        ResultWriter(tmp_path)
    (tmp_path / "summary.json").write_text("{}")
    ResultWriter(tmp_path, overwrite=True)
    assert not (tmp_path / "summary.json").exists()


def test_refuses_a_file_as_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        ResultWriter(tmp_path / "f")
