"""The teacher work a pretrain paid is counted once per checkpoint in the fleet's cost and speed-ups."""

import pytest

from odist.config import load_config
from odist.distill.api import distill
from odist.distill.pipeline import StreamOptions
from odist.pretrain import PretrainOptions, pretrain
from odist.report.render_table import render_table
from odist.report.report import build_report

W, H = 96, 64
CONFIG = load_config(overrides=["student.width=0.25", "threads=1"], environ={})

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run whose two streams began from one pretrained checkpoint, and one whose streams began cold."""
    root = tmp_path_factory.mktemp("pretrain-work")
    checkpoint = str(root / "pre.pt")
    meta = pretrain(["synthetic:static_easy"], checkpoint, CONFIG,
                    PretrainOptions(epochs=1, batch_size=4, every=4, stream=StreamOptions(width=W, height=H,
                                                                                          frames=24)))
    warm, cold = str(root / "warm"), str(root / "cold")
    for stream_id in ("a", "b"):
        for out, init in ((warm, checkpoint), (cold, None)):
            distill("synthetic:traffic", out, CONFIG, stream_id=stream_id,
                    overrides=["source.frames=12", f"source.width={W}", f"source.height={H}",
                               *([f"distill.init={init}"] if init else [])])
    return meta, warm, cold


def test_a_checkpoint_two_streams_began_from_is_paid_once(runs):
    meta, warm, _ = runs
    paid = meta["teacher"]
    assert paid["frames"] == 6 and paid["seconds"] > 0
    totals = build_report([warm]).totals
    assert totals["pretrain_checkpoints"] == 1
    assert totals["pretrain_teacher_frames"] == paid["frames"]
    assert totals["pretrain_teacher_seconds"] == pytest.approx(paid["seconds"])
    assert totals["cost"] == pytest.approx(totals["teacher_cost"] + totals["student_cost"]
                                           + totals["pretrain_teacher_cost"])
    assert totals["pretrain_teacher_cost"] > 0


def test_the_pretrains_labels_lower_the_fleets_speed_up(runs):
    _, warm, cold = runs
    with_pretrain, without = build_report([warm]).totals, build_report([cold]).totals
    assert without["pretrain_checkpoints"] == 0 and without["pretrain_teacher_cost"] == 0
    # Both runs' streams are the same length; the warm run's fleet also paid the pretrain's 6 teacher frames.
    streams = build_report([warm]).streams
    per_stream = streams.column("speedup_cost_model").to_pylist()
    frames, spent = sum(streams.column("frames").to_pylist()), sum(f / s for f, s in zip(
        streams.column("frames").to_pylist(), per_stream, strict=True))
    assert with_pretrain["speedup_cost_model"] == pytest.approx(frames / (spent + 6))


def test_the_table_names_the_pretrains_work(runs):
    _, warm, _ = runs
    text = render_table(build_report([warm]))
    assert "pretrain: 1 checkpoint the streams began from paid 6 teacher labels" in text
    assert ", pretrain " in text.split("cost: ", 1)[1].splitlines()[0]
