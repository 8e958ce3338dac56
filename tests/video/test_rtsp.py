"""Live sources against a real RTSP server on 127.0.0.1 (gst-rtsp-server, the protocol IP cameras speak).

The server (``tests/rtsp_server.py``, started by ``tests/rtsp_camera.py``) runs under the system Python, which
sees GStreamer's bindings; without them (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-ugly) these tests are skipped.
"""

from __future__ import annotations

import logging

import pytest
from netutil import free_port, read_frames
from rtsp_camera import RtspServer, unavailable

from odist.errors import InputError
from odist.video.live import LiveSettings, LiveSource

USER, PASSWORD = "admin", "Rtsp-Secret-8472"
QUICK = LiveSettings(open_timeout_s=3.0, read_timeout_s=3.0, backoff_initial_s=0.2, backoff_max_s=0.5)


@pytest.fixture(scope="module")
def rtsp_server():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    server = RtspServer(free_port(), USER, PASSWORD).start()
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_camera_over_rtsp_delivers_frames(transport, rtsp_server):
    settings = LiveSettings(**{**QUICK.__dict__, "rtsp_transport": transport})
    with LiveSource(rtsp_server.url(), settings) as source:
        frames = read_frames(source, 3)
    assert all(f.image.shape == (64, 96, 3) for f in frames)
    assert [f.index for f in frames] == sorted({f.index for f in frames})


def test_the_camera_reconnects_when_the_server_restarts(rtsp_server):
    with LiveSource(rtsp_server.url(), QUICK) as source:
        before = read_frames(source, 2)
        rtsp_server.stop()
        rtsp_server.start()
        after = read_frames(source, 2)
        stats = source.stats
    assert stats.reconnects >= 1
    assert after[0].index > before[-1].index  # indices keep counting across the reconnect


def test_a_wrong_password_is_one_line_that_never_shows_the_password(rtsp_server, caplog):
    wrong = "Wrong-Secret-1234"
    caplog.set_level(logging.INFO)
    with LiveSource(rtsp_server.url(password=wrong), QUICK) as source, \
            pytest.raises(InputError, match="refused the credentials") as refused:
        read_frames(source, 1, deadline_s=20)
    message = str(refused.value)
    assert "\n" not in message and "401" in message
    assert wrong not in message + caplog.text + str(source.stats.as_dict())


def test_a_path_that_does_not_exist_is_named_in_one_line(rtsp_server, caplog):
    caplog.set_level(logging.INFO)
    settings = LiveSettings(**{**QUICK.__dict__, "give_up_after_s": 1.0})
    with LiveSource(rtsp_server.url(path="no-such-stream"), settings) as source, \
            pytest.raises(InputError, match=r"names no stream \(404 Not Found\)") as refused:
        read_frames(source, 1, deadline_s=20)
    message = str(refused.value)
    assert "\n" not in message and "no-such-stream" in message
    assert PASSWORD not in message + caplog.text
