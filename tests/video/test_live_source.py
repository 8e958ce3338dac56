"""A live URL that accepts the connection but sends nothing is reported as such, and counted as reconnecting."""

from __future__ import annotations

import socket
import threading
import time

from odist.video.live import LiveSettings, LiveSource


def test_a_silent_camera_is_no_data_for_n_seconds_and_reconnects():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:  # accept every connection, send nothing
        server.settimeout(0.2)
        while not stopping.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings = LiveSettings(open_timeout_s=1.0, read_timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.2)
    source = LiveSource(f"tcp://127.0.0.1:{port}", settings).start()
    try:
        deadline = time.monotonic() + 60
        while source.stats.reconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        source.stop()
        stopping.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()
    assert source.stats.reconnects >= 1
    assert source.stats.last_error == f"no data from tcp://127.0.0.1:{port} for 1 s", source.stats.last_error
