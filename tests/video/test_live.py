"""Live sources against real streams on 127.0.0.1: ``odist publish`` processes over UDP, TCP and HTTP."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from netutil import read_frames

from odist.errors import InputError
from odist.video.live import LiveSettings, LiveSource, is_live_url

QUICK = LiveSettings(open_timeout_s=3.0, read_timeout_s=3.0, backoff_initial_s=0.2, backoff_max_s=1.0)


@pytest.mark.parametrize("scheme", ["udp", "tcp", "http"])
def test_frames_arrive_with_wall_clock_times_and_counting_indices(scheme, camera):
    publisher = camera(scheme)
    with LiveSource(publisher.url, QUICK).start(first_index=100) as source:
        frames = read_frames(source, 5)
    assert all(f.image.shape == (64, 96, 3) for f in frames)
    indices = [f.index for f in frames]
    assert indices[0] >= 100 and indices == sorted(set(indices))
    assert all(abs(time.time() - f.timestamp) < 60 for f in frames)
    assert source.stats.connected is False  # stopped


def test_a_slow_reader_gets_the_newest_frame_and_the_rest_are_counted_as_drops(camera):
    publisher = camera("tcp", fps=20)
    with LiveSource(publisher.url, QUICK) as source:
        read_frames(source, 1)
        for _ in range(6):
            time.sleep(0.3)  # a student three times slower than the camera
            source.read(timeout=1.0)
        stats = source.stats
    assert stats.dropped > 0
    pending = stats.decoded - stats.sampled_out - stats.delivered - stats.dropped
    assert pending in (0, 1)  # every decoded frame is delivered, dropped or the one waiting


def test_target_fps_samples_frames_out_without_calling_them_drops(camera):
    publisher = camera("udp", fps=20)
    with LiveSource(publisher.url, LiveSettings(fps=4, open_timeout_s=3, read_timeout_s=3)) as source:
        read_frames(source, 6)
        stats = source.stats
    assert stats.sampled_out > stats.delivered and stats.dropped == 0


def test_a_killed_camera_reconnects_when_it_comes_back(camera, wait_for):
    publisher = camera("tcp")
    source = LiveSource(publisher.url, QUICK).start()
    try:
        before = read_frames(source, 3)
        publisher.kill()
        wait_for(lambda: not source.stats.connected, "the source to notice the camera is gone")
        publisher.start()
        after = read_frames(source, 3)
    finally:
        source.stop()
    assert source.stats.reconnects >= 1 and source.stats.last_error is not None
    assert after[0].index > before[-1].index  # indices keep counting across the reconnect


def test_an_unreachable_url_gives_up_with_a_clear_error():
    port = _unused_port()
    settings = LiveSettings(open_timeout_s=1, read_timeout_s=1, backoff_initial_s=0.2, give_up_after_s=1.5)
    with LiveSource(f"tcp://127.0.0.1:{port}", settings) as source, \
            pytest.raises(InputError, match=r"gave no frame for 1.5 s.*refused.*check that the camera is up"):
        for _ in range(100):
            source.read(timeout=0.5)


def test_a_stream_that_never_sends_a_frame_times_out_and_gives_up():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: [accepted.append(server.accept()[0]) for _ in range(8)], daemon=True).start()
    settings = LiveSettings(open_timeout_s=1, read_timeout_s=1, backoff_initial_s=0.2, give_up_after_s=2.5)
    try:
        with LiveSource(f"tcp://127.0.0.1:{server.getsockname()[1]}", settings) as source, \
                pytest.raises(InputError, match=r"gave no frame for 2.5 s"):
            for _ in range(100):
                source.read(timeout=0.5)
        assert accepted  # it did connect: the silence, not the connection, is what failed
    finally:
        server.close()
        for connection in accepted:
            connection.close()


def test_live_urls_are_told_apart_from_files():
    assert is_live_url("rtsp://cam/1") and is_live_url("udp://0.0.0.0:5000") and is_live_url("device:v4l2:/dev/video0")
    assert not is_live_url("/videos/a.mp4") and not is_live_url("s3://bucket/a.mp4")


def test_a_bad_device_url_is_a_clear_error():
    source = LiveSource("device:/dev/video0", LiveSettings(give_up_after_s=5)).start()
    with pytest.raises(InputError, match="device:FORMAT:PATH"):
        source.read(timeout=5)
    source.stop()


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_codec_ffmpeg_cannot_decode_fails_at_once_with_a_clear_error(tmp_path):
    clip = tmp_path / "avs2.ts"
    clip.write_bytes(_ts_with_stream_type(0xD2))  # AVS2 video: FFmpeg knows it, these builds have no decoder
    source = LiveSource(str(clip), LiveSettings(give_up_after_s=None)).start()
    try:
        with pytest.raises(InputError, match="no decoder for its video codec"):
            for _ in range(40):
                source.read(timeout=0.5)
        assert source.stats.reconnects == 0  # not retried: another try would not decode either
    finally:
        source.stop()


def _ts_with_stream_type(stream_type: int) -> bytes:
    """A short H.264 MPEG-TS whose program map declares ``stream_type`` instead (CRCs fixed)."""
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    container = av.open(buffer, "w", format="mpegts")
    stream = container.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for i in range(10):
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    data = bytearray(buffer.getvalue())
    pmt_pid = None
    for offset in range(0, len(data), 188):
        pid = ((data[offset + 1] & 0x1F) << 8) | data[offset + 2]
        if not data[offset + 1] & 0x40:  # only packets that start a section
            continue
        section = offset + 5 + data[offset + 4]
        if pid == 0 and pmt_pid is None:
            pmt_pid = ((data[section + 10] & 0x1F) << 8) | data[section + 11]
        elif pid == pmt_pid:
            length = ((data[section + 1] & 0x0F) << 8) | data[section + 2]
            first_stream = section + 12 + (((data[section + 10] & 0x0F) << 8) | data[section + 11])
            data[first_stream] = stream_type
            end = section + 3 + length - 4
            data[end:end + 4] = _crc32_mpeg2(bytes(data[section:end])).to_bytes(4, "big")
    return bytes(data)


def _crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc
