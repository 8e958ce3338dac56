import numpy as np
import pytest
from PIL import Image

from odist.errors import InputError, OutputError
from odist.video.archive import ArchiveSource
from odist.video.export import write_synthetic
from odist.video.synthetic import SyntheticSource


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    source = SyntheticSource("traffic", seed=1, width=160, height=96, frames=24, fps=12.0)
    return source, write_synthetic(source, tmp_path_factory.mktemp("export") / "clip")


def test_writes_video_and_labels(exported):
    source, clip = exported
    assert clip.video.name == "video.mp4" and clip.video.is_file()
    assert (clip.frames, clip.fps, clip.width, clip.height) == (24, 12.0, 160, 96)
    assert clip.class_names == source.class_names
    assert sorted(p.name for p in clip.labels.iterdir()) == [f"{i:06d}.png" for i in range(24)]


def test_video_decodes_to_the_same_frames(exported):
    source, clip = exported
    archive = ArchiveSource(clip.video)
    assert archive.fps == pytest.approx(12.0) and archive.num_frames == 24
    decoded = list(archive)
    assert len(decoded) == 24
    for frame in decoded:
        original = source.frame(frame.index)
        assert frame.timestamp == pytest.approx(original.timestamp, abs=1e-3)
        assert np.abs(frame.image.astype(np.int16) - original.image).mean() < 8
    # Frames stay in order: each decoded frame is closer to its own original than to its neighbour.
    d_same = np.abs(decoded[10].image.astype(np.int16) - source.frame(10).image).mean()
    d_next = np.abs(decoded[10].image.astype(np.int16) - source.frame(11).image).mean()
    assert d_same < d_next


def test_label_pngs_round_trip_exactly(exported):
    source, clip = exported
    for index in range(clip.frames):
        with Image.open(clip.label_path(index)) as image:
            assert image.mode == "L"
            labels = np.asarray(image)
        assert np.array_equal(labels, source.frame(index).truth)


def test_odd_size_and_unwritable_folder(tmp_path):
    with pytest.raises(InputError, match="even"):
        write_synthetic(SyntheticSource("static_easy", width=161, height=96, frames=2), tmp_path / "odd")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_synthetic(SyntheticSource("static_easy", width=64, height=48, frames=2), blocker)
