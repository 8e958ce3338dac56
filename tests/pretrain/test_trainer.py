"""odist pretrain: from an earlier run's kept labels or a teacher, resumable, loadable as a warm start."""

import pytest
import torch

from odist.cli import main
from odist.config import load_config
from odist.distill.api import distill
from odist.distill.pipeline import StreamOptions
from odist.errors import CheckpointError, OutputError
from odist.pretrain import PretrainOptions, pretrain
from odist.storage.checkpoint import load_checkpoint, weight_digest

W, H = 96, 64
SIZE = [f"source.width={W}", f"source.height={H}"]
CONFIG = load_config(overrides=["student.width=0.25", "threads=1"], environ={})
SMALL = PretrainOptions(epochs=2, batch_size=4, every=4, stream=StreamOptions(width=W, height=H, frames=24))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    summary = distill("synthetic:traffic", out=str(out), config=CONFIG, overrides=[*SIZE, "source.frames=32"])
    return out, summary


def test_pretrain_on_a_runs_kept_labels_round_trips_as_a_warm_start(run, tmp_path, capsys):
    out, summary = run
    checkpoint = tmp_path / "pre.pt"
    code = main(["pretrain", str(out), "--out", str(checkpoint), "--epochs", "1", "--batch-size", "4", "--quiet",
                 "--set", "student.width=0.25", "--set", "threads=1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"read traffic: {summary['keyframes']} frames, labels from run" in printed
    assert f"teacher labelled 0 (0.0 s charged), {summary['keyframes']} labels reused" in printed
    payload = load_checkpoint(str(checkpoint), CONFIG.to_dict())
    meta = payload["pretrain"]
    assert meta["frames"] == summary["keyframes"] and meta["resolution"] == {"height": H, "width": W}
    assert list(payload["config"]["classes"]) == list(CONFIG.classes) and meta["teacher"]["reused_seconds"] > 0
    assert weight_digest(payload["state"]["distiller"]["student"]) == meta["weight_digest"]
    started = distill("synthetic:static_easy", str(tmp_path / "warm"), CONFIG,
                      overrides=[*SIZE, "source.frames=4", f"distill.init={checkpoint}"])
    assert started["frames"] == 4


def test_a_killed_pretrain_resumes_to_the_uninterrupted_weights(tmp_path):
    whole = pretrain(["synthetic:static_easy"], str(tmp_path / "whole.pt"), CONFIG, SMALL)
    killed = tmp_path / "killed.pt"
    after_one = pretrain(["synthetic:static_easy"], str(killed), CONFIG, SMALL, stop_after=1)
    assert after_one["epochs_done"] == 1 and after_one["teacher"]["frames"] == 6
    with pytest.raises(OutputError, match="already exists"):
        pretrain(["synthetic:static_easy"], str(killed), CONFIG, SMALL)
    with pytest.raises(OutputError, match="every 4, this call gives 3"):
        pretrain(["synthetic:static_easy"], str(killed), CONFIG, PretrainOptions(**{**SMALL.__dict__, "every": 3}),
                 resume=True)
    resumed = pretrain(["synthetic:static_easy"], str(killed), CONFIG, SMALL, resume=True)
    assert resumed["epochs_done"] == 2 and resumed["losses"][0] == after_one["losses"][0]
    assert resumed["weight_digest"] == whole["weight_digest"] and resumed["losses"] == whole["losses"]
    final = torch.load(killed, weights_only=True)["state"]["distiller"]["student"]
    assert weight_digest(final) == whole["weight_digest"]


def test_a_checkpoint_of_other_classes_is_refused_as_a_start(tmp_path):
    checkpoint = tmp_path / "pre.pt"
    pretrain(["synthetic:static_easy"], str(checkpoint), CONFIG, PretrainOptions(**{**SMALL.__dict__, "epochs": 1}))
    other = load_config(overrides=["student.width=0.25", 'classes=["background","person"]'], environ={})
    with pytest.raises(CheckpointError, match=r"classes \[background, person, vehicle, bike\].*\[background, person\]"):
        distill("synthetic:static_easy", str(tmp_path / "o"), other,
                overrides=[*SIZE, "source.frames=2", f"distill.init={checkpoint}"])
