"""A warm-started stream begins from the checkpoint's weights, and the fleet picks the documented student."""

import json

import numpy as np
import pytest
import torch

from odist.config import TeacherConfig, load_config
from odist.distill.api import distill
from odist.distill.distiller import OnlineDistiller
from odist.distill.pipeline import StreamOptions
from odist.fleet.student_actor import JobOptions, StudentWorker
from odist.fleet.warm_start import FinishedStudent, FleetWarmStart
from odist.fleet.weight_average import average_weights
from odist.models.teachers import build_teacher
from odist.storage.checkpoint import load_checkpoint, weight_digest
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table
from odist.video.manifest import StreamSpec
from odist.video.synthetic import SyntheticSource

W, H = 96, 64
SIZE = [f"source.width={W}", f"source.height={H}"]
CONFIG = load_config(overrides=["student.width=0.25", "threads=1"], environ={})

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_pick_is_the_groups_latest_student_else_the_latest_and_a_rows_own_init_wins():
    fleet = FleetWarmStart([FinishedStudent("a", "s1", "ck-a"), FinishedStudent("b", "s2", "ck-b"),
                            FinishedStudent("c", None, "ck-c")])
    assert fleet.apply(StreamSpec("x", "x1", group="s1")).init == "ck-a"
    assert fleet.apply(StreamSpec("x", "x2", group="s3")).init == "ck-c"
    assert fleet.apply(StreamSpec("x", "x3")).init_from == "fleet:c"
    assert fleet.apply(StreamSpec("x", "x4", init="own", init_from="manifest")).init == "own"
    assert FleetWarmStart().apply(StreamSpec("x", "x5")).init is None


def test_a_warm_started_streams_first_prediction_comes_from_the_checkpoints_weights(tmp_path):
    out = str(tmp_path / "run")
    done = distill("synthetic:traffic", out, CONFIG, overrides=[*SIZE, "source.frames=16"], stream_id="first")
    fleet = FleetWarmStart.from_store(open_store(out), [StreamSpec("synthetic:traffic", "first")])
    spec = fleet.apply(StreamSpec("synthetic:static_easy", "second"))
    assert spec.init == done["checkpoint"] and spec.init_from == "fleet:first"

    frozen = load_config(overrides=["student.width=0.25", "threads=1", "distill.max_updates=0"], environ={})
    outcome = StudentWorker().process(spec, JobOptions(out, frozen, StreamOptions(width=W, height=H, frames=4)))
    assert outcome.status == "done", outcome.error
    area = StreamArea(open_store(out), "second")
    began = json.loads(area.store.get(area.key("stream.json")))["init"]
    weights = load_checkpoint(done["checkpoint"], CONFIG.to_dict())["state"]["distiller"]["student"]
    assert began == {"uri": done["checkpoint"], "chosen_by": "fleet:first", "weight_digest": weight_digest(weights)}

    # With no updates allowed, the first frame's committed mask is the checkpoint student's own prediction.
    student = OnlineDistiller(frozen, build_teacher("oracle", TeacherConfig(), frozen.classes))
    student.load_state_dict({"student": weights}, weights_only=True)
    first = next(iter(SyntheticSource("static_easy", width=W, height=H, frames=4, seed=0)))
    np.testing.assert_array_equal(decode_masks(read_stream_table(area, "masks"))[0], student.infer(first).prediction)


def test_average_weights_is_the_elementwise_mean_and_keeps_integer_buffers():
    a = {"w": torch.tensor([1.0, 3.0]), "steps": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "steps": torch.tensor(9)}
    mean = average_weights([a, b])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0])) and int(mean["steps"]) == 9


def test_fleet_average_begins_from_the_mean_of_the_groups_latest_students_written_once(tmp_path):
    out = str(tmp_path / "run")
    for sid, scenario in (("s1", "traffic"), ("s2", "static_easy"), ("other", "traffic")):
        distill(f"synthetic:{scenario}", out=out, config=CONFIG, overrides=[*SIZE, "source.frames=8"], stream_id=sid)
    wide = load_config(overrides=["student.width=0.5", "threads=1"], environ={})
    distill("synthetic:traffic", out=out, config=wide, overrides=[*SIZE, "source.frames=4"], stream_id="wide")
    done = [StreamSpec("", "s1", group="site"), StreamSpec("", "other", group="far"),
            StreamSpec("", "wide", group="site"), StreamSpec("", "s2", group="site")]
    store = open_store(out)
    fleet = FleetWarmStart.from_store(store, done, average_config=CONFIG.to_dict())
    spec = fleet.apply(StreamSpec("synthetic:traffic", "new", group="site"))
    # The student of another width is left out; the average is of s1's and s2's weights.
    assert spec.init_from == "fleet-average:s1,s2"
    payload = load_checkpoint(spec.init, CONFIG.to_dict())
    assert [uri.rsplit("stream_id=", 1)[1].split("/")[0] for uri in payload["averaged_from"]] == ["s1", "s2"]
    students = [load_checkpoint(StreamArea(store, sid).summary()["checkpoint"], CONFIG.to_dict())
                ["state"]["distiller"]["student"] for sid in ("s1", "s2")]
    for name, value in payload["state"]["distiller"]["student"].items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (students[0][name] + students[1][name]) / 2)
    again = fleet.apply(StreamSpec("synthetic:traffic", "newer", group="site"))
    assert (again.init, again.init_from) == (spec.init, spec.init_from) and len(store.list("fleet_average/")) == 1
    started = distill("synthetic:traffic", out, CONFIG, stream_id="new",
                      overrides=[*SIZE, "source.frames=4", f"distill.init={spec.init}"])
    assert started["frames"] == 4
