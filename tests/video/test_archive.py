from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from odist.errors import InputError
from odist.video.archive import ArchiveSource
from odist.video.open import open_source
from odist.video.synthetic import SyntheticSource

W, H = 160, 96


def encode(path: Path, frames: int, *, fps: int = 30, codec: str = "libx264", pix_fmt: str = "yuv420p") -> Path:
    """Frames whose brightness encodes their number (frame i has mean value 20 + 6 i)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        rng = np.random.default_rng(0)
        for i in range(frames):
            image = np.full((H, W, 3), 20 + 6 * i, np.uint8)
            image[: H // 2, : W // 2] = rng.integers(0, 255, 3, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_silence(container) -> None:
    stream = container.add_stream("aac", rate=16000)
    samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    samples.sample_rate, samples.pts = 16000, 0
    container.mux(stream.encode(samples))
    container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return encode(tmp_path_factory.mktemp("archive") / "clip.mp4", 30)


def test_decodes_every_frame_in_order(clip):
    src = ArchiveSource(clip)
    assert (src.width, src.height, src.fps, src.num_frames, src.name) == (W, H, 30.0, 30, "clip.mp4")
    frames = list(src)
    assert [f.index for f in frames] == list(range(30))
    assert [f.timestamp for f in frames] == pytest.approx([i / 30 for i in range(30)], abs=1e-3)
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    brightness = [float(f.image[H // 2:, W // 2:].mean()) for f in frames]
    assert brightness == pytest.approx([20 + 6 * i for i in range(30)], abs=3)
    assert all(f.truth is None for f in frames)
    again = list(src)  # a source can be iterated more than once
    assert len(again) == 30 and np.array_equal(again[7].image, frames[7].image)


def test_fps_sampling_keeps_frames_on_ticks(clip):
    ten = ArchiveSource(clip, fps=10)
    frames = list(ten)
    assert ten.fps == 10 and ten.num_frames == 10 and len(frames) == 10
    assert [f.index for f in frames] == list(range(10))
    assert [f.timestamp for f in frames] == pytest.approx([i / 10 for i in range(10)], abs=1e-3)
    assert len(list(ArchiveSource(clip, fps=12))) in (12, 13)
    faster = ArchiveSource(clip, fps=60)  # never upsampled
    assert faster.fps == 30 and len(list(faster)) == 30


def test_resize_and_frame_cap(clip):
    half = ArchiveSource(clip, width=80)
    assert (half.width, half.height) == (80, 48)
    assert next(iter(half)).image.shape == (48, 80, 3)
    by_height = ArchiveSource(clip, height=50)
    assert (by_height.width, by_height.height) == (84, 50)  # 160 * 50 / 96 = 83.3, rounded to even
    both = ArchiveSource(clip, width=64, height=64, max_frames=5)
    frames = list(both)
    assert both.num_frames == 5 and len(frames) == 5 and frames[0].image.shape == (64, 64, 3)
    assert [f.index for f in ArchiveSource(clip, fps=10, max_frames=3)] == [0, 1, 2]


def test_other_containers_and_codecs(tmp_path):
    mkv = encode(tmp_path / "clip.mkv", 6, fps=25, codec="mpeg4")
    frames = list(ArchiveSource(mkv))
    assert len(frames) == 6 and frames[1].timestamp == pytest.approx(0.04, abs=1e-3)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.mp4 does not exist"):
        ArchiveSource(tmp_path / "nothere.mp4")
    with pytest.raises(InputError, match="directory"):
        ArchiveSource(tmp_path)


@pytest.mark.parametrize("name, content", [
    ("random.mp4", np.random.default_rng(1).bytes(4000)),
    ("notes.txt", b"this is not a video\n" * 50),
    ("empty.mp4", b""),
])
def test_unreadable_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=name) as err:
        ArchiveSource(path)
    assert "not a readable video" in str(err.value) and err.value.fix


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "audio.m4a"
    with av.open(str(path), mode="w") as container:
        write_silence(container)
    with pytest.raises(InputError, match="no video stream"):
        ArchiveSource(path)


def test_video_stream_without_frames(tmp_path):
    path = tmp_path / "zero.mkv"
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        write_silence(container)  # only the audio stream gets data
        container.mux(video.encode(None))
    src = ArchiveSource(path)  # opens fine: the stream exists
    with pytest.raises(InputError, match="no decodable video frames"):
        list(src)


def test_decode_error_midway_names_the_frame(tmp_path):
    path = encode(tmp_path / "frames.avi", 20, codec="png", pix_fmt="rgb24")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 200] = np.random.default_rng(0).bytes(200)
    path.write_bytes(bytes(data))
    seen = []
    with pytest.raises(InputError, match=r"frames\.avi: decoding failed at frame \d+"):
        seen.extend(ArchiveSource(path))
    assert 0 < len(seen) < 20


def test_invalid_options():
    for kwargs in ({"fps": 0}, {"fps": -5.0}, {"width": 0}, {"height": -2}, {"max_frames": 0}, {"width": 1.5}):
        with pytest.raises(InputError):
            ArchiveSource("whatever.mp4", **kwargs)


def test_open_source_dispatch(clip):
    synthetic = open_source("synthetic:static_easy", seed=2, width=320)
    assert isinstance(synthetic, SyntheticSource)
    assert (synthetic.width, synthetic.height, synthetic.num_frames, synthetic.fps, synthetic.seed) == (320, 180, 900,
                                                                                                      30.0, 2)
    default = open_source("synthetic:traffic", frames=10)
    assert (default.width, default.height, default.num_frames) == (640, 360, 10)
    archive = open_source(str(clip), frames=4, fps=10, width=80)
    assert isinstance(archive, ArchiveSource) and archive.num_frames == 4 and archive.width == 80
    assert len(list(open_source(f"file://{clip}"))) == 30
    with pytest.raises(InputError, match=r"rtsp:// is not supported"):
        open_source("rtsp://camera.local/stream1")
    with pytest.raises(InputError, match="unknown synthetic scenario"):
        open_source("synthetic:nope")
