"""The loopback RTSP camera of the tests: ``tests/rtsp_server.py`` run under the system Python.

That Python sees GStreamer's bindings (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-ugly); ``unavailable()`` says why not, so tests can skip with the reason.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

import pytest

SYSTEM_PYTHON = os.environ.get("ODIST_TEST_GI_PYTHON", "/usr/bin/python3")
SERVER = Path(__file__).resolve().parent / "rtsp_server.py"
PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
         "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay')")


def unavailable() -> str | None:
    """Why no RTSP server can run here, or None when one can."""
    probe = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True) \
        if os.path.exists(SYSTEM_PYTHON) else None
    if probe is None or probe.returncode != 0:
        return (f"no RTSP server: {SYSTEM_PYTHON} cannot load gst-rtsp-server and x264enc "
                "(apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly)")
    return None


class RtspServer:
    """``tests/rtsp_server.py`` on one port, startable again (a camera that reboots)."""

    def __init__(self, port: int, user: str, password: str, path: str = "cam") -> None:
        self.port, self.user, self.password, self.path = port, user, password, path
        self.process: subprocess.Popen | None = None

    def url(self, password: str | None = None, path: str | None = None) -> str:
        return f"rtsp://{self.user}:{password or self.password}@127.0.0.1:{self.port}/{path or self.path}"

    def start(self) -> RtspServer:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port), self.path, self.user, self.password],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        if not ready or self.process.stdout.readline().strip() != "ready":
            self.stop()
            pytest.fail(f"the RTSP server did not start: {self.process.stderr.read()}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
