"""A run keeps its keyframes' teacher labels, committed with their segments and replayable as a teacher."""

import numpy as np
import pytest

from odist.config import TeacherConfig, load_config
from odist.distill.api import distill
from odist.errors import TeacherError
from odist.models.teachers import build_teacher
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table
from odist.video.synthetic import SyntheticSource

FRAMES, W, H = 40, 96, 64
CONFIG = load_config(overrides=["student.width=0.25", "threads=1"], environ={})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    distill("synthetic:traffic", str(out), CONFIG, overrides=[f"source.frames={FRAMES}", f"source.width={W}",
                                                             f"source.height={H}", "storage.segment_frames=8"])
    return out


def test_stored_keyframe_labels_replay_to_the_teachers_labels(run):
    area = StreamArea(open_store(str(run)), "traffic")
    records = read_stream_table(area)
    keyframes = [r["frame_index"] for r in records.to_pylist() if r["keyframe"]]
    stored = decode_masks(read_stream_table(area, "labels"))
    assert sorted(stored) == keyframes and len(keyframes) >= 3
    # every labels object is named by the commit of the segment it was learned in
    assert all(c.labels is not None for c in area.commits() if any(c.first_frame <= k <= c.last_frame
                                                                     for k in keyframes))

    oracle = build_teacher("oracle", TeacherConfig(), CONFIG.classes)
    replay = build_teacher(f"replay:{run}/streams/stream_id=traffic", TeacherConfig(), CONFIG.classes)
    frames = {f.index: f for f in SyntheticSource("traffic", width=W, height=H, frames=FRAMES, seed=0)}
    for index in keyframes:
        expected = oracle.label([frames[index]]).labels[0]
        replayed = replay.label([frames[index]]).labels[0]
        np.testing.assert_array_equal(replayed.classes, expected.classes)
        np.testing.assert_array_equal(stored[index], expected.classes)
    not_a_keyframe = next(i for i in range(FRAMES) if i not in stored)
    with pytest.raises(TeacherError, match=f"no replay label for frame {not_a_keyframe}.*keyframes only"):
        replay.label([frames[not_a_keyframe]])
