"""A loopback RTSP camera for the tests: gst-rtsp-server serving a moving test pattern as H.264.

Run with a Python that sees GStreamer's introspection bindings (Debian: ``python3-gi``,
``gir1.2-gst-rtsp-server-1.0``, ``gstreamer1.0-plugins-ugly`` for x264enc), usually the system's:

    /usr/bin/python3 tests/rtsp_server.py PORT PATH USER PASSWORD

It serves ``rtsp://USER:PASSWORD@127.0.0.1:PORT/PATH`` over TCP and UDP (basic authentication) and prints
``ready`` once it listens. This file imports nothing of odist's and is not collected by pytest.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=96,height=64,framerate=10/1 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=5 threads=1 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )")


def main(port: str, path: str, user: str, password: str) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    permissions = GstRtspServer.RTSPPermissions()
    for permission in ("media.factory.access", "media.factory.construct"):
        permissions.add_permission_for_role("camera-user", permission, True)
    factory.set_permissions(permissions)
    server.get_mount_points().add_factory(f"/{path}", factory)

    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "camera-user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)

    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(*sys.argv[1:5])
