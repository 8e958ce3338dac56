import io

import pytest
import torch

from odist.config import OdistConfig, load_config
from odist.errors import CheckpointError
from odist.storage.checkpoint import checkpoint_bytes, load_checkpoint, parse_checkpoint


def test_round_trip_and_metadata_checks(tmp_path):
    config = OdistConfig().to_dict()
    path = tmp_path / "c.pt"
    path.write_bytes(checkpoint_bytes({"student": {"w": torch.ones(2)}}, config, next_frame_index=7))
    payload = load_checkpoint(str(path), config)
    assert payload["next_frame_index"] == 7 and torch.equal(payload["state"]["student"]["w"], torch.ones(2))
    narrower = load_config(overrides=["student.width=0.5"], environ={}).to_dict()
    with pytest.raises(CheckpointError, match="width"):
        load_checkpoint(str(path), narrower)


def test_missing_and_foreign_files(tmp_path):
    config = OdistConfig().to_dict()
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(str(tmp_path / "none.pt"), config)
    with pytest.raises(CheckpointError, match="cannot be read"):
        parse_checkpoint(b"not a checkpoint", "junk.pt", config)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an odist"):
        load_checkpoint(str(tmp_path / "other.pt"), config)


def test_head_architecture_is_checked_and_older_checkpoints_had_the_papers_head(tmp_path):
    fine = OdistConfig().to_dict()
    paper = load_config(overrides=["student.fine_skips=false"], environ={}).to_dict()
    (tmp_path / "fine.pt").write_bytes(checkpoint_bytes({}, fine))
    with pytest.raises(CheckpointError, match="fine_skips"):
        load_checkpoint(str(tmp_path / "fine.pt"), paper)
    older = checkpoint_bytes({}, paper)
    payload = torch.load(io.BytesIO(older), weights_only=True)
    del payload["metadata"]["fine_skips"]  # written before the key existed
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    assert parse_checkpoint(buffer.getvalue(), "older.pt", paper)["metadata"] == payload["metadata"]
    with pytest.raises(CheckpointError, match="fine_skips=False"):
        parse_checkpoint(buffer.getvalue(), "older.pt", fine)


def test_other_classes_or_architecture_are_refused_in_one_line_naming_both(tmp_path):
    stream = OdistConfig().to_dict()
    (tmp_path / "c.pt").write_bytes(checkpoint_bytes({}, stream))
    fewer = load_config(overrides=['classes=["background","person"]'], environ={}).to_dict()
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(str(tmp_path / "c.pt"), fewer)
    line = str(refused.value)
    assert "\n" not in line and f"[{', '.join(stream['classes'])}]" in line and "[background, person]" in line
    narrower = load_config(overrides=["student.width=0.5"], environ={}).to_dict()
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(str(tmp_path / "c.pt"), narrower)
    line = str(refused.value)
    assert "\n" not in line and f"width={stream['student']['width']!r}" in line and "width=0.5" in line
