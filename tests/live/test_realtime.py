"""A live camera's restart continues only its own stream: identity is checked as on an archive resume."""

from __future__ import annotations

import json
import threading

import numpy as np

from odist.config import load_config
from odist.live.cameras import CameraSpec
from odist.live.student import LiveOptions, LiveStudent
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.video.frame import Frame

CONFIG = load_config(overrides=["student.width=0.25", "threads=1"], environ={})
OPTIONS = LiveOptions(fps=None, width=64, height=48, open_timeout_s=1, read_timeout_s=1)
CAMERA = CameraSpec("door", "rtsp://viewer:Door-Secret-77@127.0.0.1:9/door", fps=10.0)


def _commit_a_few_frames(out: str, teacher) -> None:
    """What a first run of the camera leaves: a commit and its stream.json (frames fed by hand, no source)."""
    feed = LiveStudent(CAMERA, out, CONFIG, teacher, OPTIONS).start(StreamArea(open_store(out), CAMERA.id), teacher)
    rng = np.random.default_rng(0)
    feed.session.run([Frame(index, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for index in range(3)])
    feed.session.commit()
    feed.close()


def test_a_camera_restarted_with_another_student_or_rate_is_refused_and_stream_json_kept(
        tmp_path, bright_teacher_factory, one_torch_thread):
    out = str(tmp_path)
    teacher = bright_teacher_factory(CONFIG)
    _commit_a_few_frames(out, teacher)
    area = StreamArea(open_store(out), CAMERA.id)
    first = area.store.get(area.key("stream.json"))
    assert area.last_commit() is not None and b"Door-Secret-77" not in first

    other_student = load_config(overrides=["student.width=0.5", "threads=1"], environ={})
    refused = LiveStudent(CAMERA, out, other_student, teacher, OPTIONS).run(threading.Event(), duration_s=0.1)
    assert refused.state == "failed"
    assert "was started with student width=0.25" in refused.error and "width=0.5" in refused.error
    assert "another id" in refused.error and "\n" not in refused.error

    slower = CameraSpec(CAMERA.id, CAMERA.url, fps=5.0)
    refused = LiveStudent(slower, out, CONFIG, teacher, OPTIONS).run(threading.Event(), duration_s=0.1)
    assert refused.state == "failed" and "fps 10 fps" in refused.error and "fps 5 fps" in refused.error

    # The same camera again continues: stream.json is the first attempt's, each attempt has its record.
    again = LiveStudent(CAMERA, out, CONFIG, teacher, OPTIONS).start(StreamArea(open_store(out), "door"), teacher)
    again.close()
    assert area.store.get(area.key("stream.json")) == first
    attempts = area.store.list(area.key("attempts/"))
    assert len(attempts) == 2 and json.loads(first)["attempt"] in {k.rsplit("/", 1)[-1][:-5] for k in attempts}
