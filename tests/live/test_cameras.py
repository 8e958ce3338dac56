"""CAMERAS.yaml: valid entries run, each invalid one is reported on its own, an unreadable file is an error."""

from __future__ import annotations

import re

import pytest

from odist.errors import ConfigError
from odist.live.cameras import CameraSpec, load_cameras, read_cameras

GOOD = """
- id: lobby
  url: rtsp://10.0.0.12/stream1
- id: gate
  url: udp://0.0.0.0:5000
  fps: 5
  overrides: ["distill.max_updates=4"]
"""


def test_a_valid_list_gives_one_spec_per_camera(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text(GOOD)
    assert load_cameras(path) == [
        CameraSpec("lobby", "rtsp://10.0.0.12/stream1"),
        CameraSpec("gate", "udp://0.0.0.0:5000", 5.0, ("distill.max_updates=4",)),
    ]


@pytest.mark.parametrize(("entry", "message"), [
    ("- id: a\n", "entry 2 has no url"),
    ("- url: udp://h:1\n", "entry 2 has no id"),
    ("- id: b\n  url: /videos/b.mp4\n", "not a live URL"),
    ("- id: lobby\n  url: udp://h:2\n", "'lobby' is used twice"),
    ("- id: c\n  url: udp://h:3\n  fps: -1\n", "fps -1 is not a positive number"),
    ("- id: d\n  url: udp://h:4\n  overrides: [\"distill.nonsense=1\"]\n", "entry 2.*nonsense"),
    ("- id: e\n  url: udp://h:5\n  colour: red\n", "unknown keys \\['colour'\\]"),
    ("- id: bad/id\n  url: udp://h:6\n", "entry 2"),
])
def test_an_invalid_entry_is_reported_alone_and_the_others_still_run(tmp_path, entry, message):
    path = tmp_path / "cameras.yaml"
    path.write_text("- id: lobby\n  url: rtsp://10.0.0.12/stream1\n" + entry)
    cameras, problems = read_cameras(path)
    assert [c.id for c in cameras] == ["lobby"]
    assert len(problems) == 1 and isinstance(problems[0], ConfigError)
    assert problems[0].fix
    assert re.search(message, str(problems[0])), str(problems[0])
    with pytest.raises(ConfigError):
        load_cameras(path)


@pytest.mark.parametrize(("text", "message"), [
    ("[not: valid", "not valid YAML"),
    ("lobby: rtsp://x\n", "non-empty YAML list"),
    ("[]", "non-empty YAML list"),
])
def test_an_unusable_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_cameras(path)


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_bytes("- id: caf\xe9\n  url: rtsp://x/1\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"camera list .* is not UTF-8 text \(byte 9\)"):
        read_cameras(path)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_cameras(tmp_path / "nope.yaml")


def test_live_rtsp_transport_reaches_the_source_and_is_checked():
    from odist.live.realtime import live_settings
    from odist.run_config import LiveConfig, LiveOptions

    camera = CameraSpec("cam", "rtsp://127.0.0.1:8554/cam")
    assert live_settings(LiveOptions(rtsp_transport="udp").validate(), camera).rtsp_transport == "udp"
    assert live_settings(LiveOptions().validate(), camera).rtsp_transport == "tcp"
    with pytest.raises(ConfigError, match=r"live\.rtsp_transport"):
        LiveConfig(rtsp_transport="sctp").validate()
