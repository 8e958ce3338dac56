"""``storage.final_checkpoint``: a finished stream's last checkpoint shrinks to the student's weights (fp32 or fp16),
an interrupted stream still resumes exactly, and continuing a stream from weights alone is refused in one line."""

import io

import numpy as np
import pytest
import torch

import odist
from odist.errors import CheckpointError
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table

FRAMES = 12
BASE = ["student.width=0.25", "threads=1", "distill.max_updates=2"]


def _run(out, contents, init=None, **kwargs):
    return odist.distill("synthetic:traffic", str(out), overrides=[
        *BASE, "source.width=48", "source.height=32", f"source.frames={FRAMES}", "storage.segment_frames=4",
        f"storage.final_checkpoint={contents}", *([f"distill.init={init}"] if init else [])], **kwargs)


def _area(out):
    return StreamArea(open_store(str(out)), "traffic")


def _checkpoint(out):
    area = _area(out)
    data = area.store.get(area.last_commit().checkpoint)
    return len(data), torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    _run(out, "full")
    return out


@pytest.mark.parametrize("contents", ["weights", "weights-fp16"])
def test_an_interrupted_stream_with_a_small_final_checkpoint_resumes_exactly(tmp_path, whole, contents):
    out = tmp_path / contents

    def interrupt(progress):
        if progress.frames >= 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(out, contents, on_progress=interrupt)
    assert _checkpoint(out)[1].get("contents", "full") == "full"  # unfinished: whole state, resumable
    summary = _run(out, contents, resume=True)
    assert summary["frames"] == FRAMES

    mine, theirs = (decode_masks(read_stream_table(_area(o), "masks")) for o in (out, whole))
    assert all(np.array_equal(mine[i], theirs[i]) for i in range(FRAMES))
    a, b = (read_stream_table(_area(o)) for o in (out, whole))
    for column in ("keyframe", "updates", "stride"):
        assert a.column(column).to_pylist() == b.column(column).to_pylist()

    size, payload = _checkpoint(out)
    full_size, full_payload = _checkpoint(whole)
    assert payload["contents"] == contents and set(payload["state"]) == {"distiller"}
    assert size < full_size / (1.5 if contents == "weights" else 3)
    weights, reference = payload["state"]["distiller"]["student"], full_payload["state"]["distiller"]["student"]
    for name, tensor in reference.items():
        if contents == "weights" or not tensor.is_floating_point():
            assert torch.equal(weights[name], tensor), name
        else:
            assert weights[name].dtype == torch.float16
            torch.testing.assert_close(weights[name].float(), tensor, rtol=1e-3, atol=1e-4)


def test_continuing_from_weights_only_is_refused_in_one_line_and_warm_starts_read_them(tmp_path):
    out = tmp_path / "run"
    summary = _run(out, "weights-fp16")
    area = _area(out)
    area.store.delete(area.key("summary.json"))  # as a stopped live camera that starts again
    with pytest.raises(CheckpointError, match="holds the student's weights only") as refused:
        _run(out, "weights-fp16", resume=True)
    assert "\n" not in str(refused.value.what) and "--overwrite" in refused.value.fix

    warm = _run(tmp_path / "warm", "full", init=summary["checkpoint"])
    assert warm["frames"] == FRAMES


def test_an_unknown_final_checkpoint_is_a_config_error(tmp_path):
    from odist.errors import ConfigError

    with pytest.raises(ConfigError, match=r"storage\.final_checkpoint"):
        _run(tmp_path / "run", "half")
