"""``odist render``: the overlay video of a stream's committed masks."""

import json
import shutil

import av
import numpy as np
import pytest

from odist.cli import main
from odist.config import load_config
from odist.distill.pipeline import StreamOptions, distill_stream
from odist.errors import InputError
from odist.models.teachers import build_teacher
from odist.render.overlay import annotate, blend, class_colour
from odist.render.video import render_stream
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table
from odist.video.export import write_synthetic
from odist.video.synthetic import SyntheticSource

pytestmark = pytest.mark.usefixtures("one_torch_thread")

W, H, FRAMES = 96, 64, 24
CONFIG = ["student.width=0.25", "threads=1"]
CLASSES = ("background", "person", "vehicle", "bike")


class Spec:
    def __init__(self, uri: str, stream_id: str) -> None:
        self.uri, self.stream_id = uri, stream_id


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = load_config(overrides=CONFIG, environ={})
    teacher = build_teacher("oracle", config.teacher, config.classes)
    distill_stream(Spec("synthetic:traffic", "traffic"), str(out), config, teacher,
                   StreamOptions(evaluate=True, width=W, height=H, frames=FRAMES, seed=3, segment_frames=8))
    return out


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_blend_paints_each_class_in_its_colour_and_leaves_background():
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0], mask[1, 1] = 1, 2
    out = blend(image, mask, alpha=0.5)
    assert (out[2:, 2:] == 100).all()
    np.testing.assert_array_equal(out[0, 0], np.rint((np.asarray(class_colour(1)) + 100) / 2))
    np.testing.assert_array_equal(out[1, 1], np.rint((np.asarray(class_colour(2)) + 100) / 2))


def test_render_writes_every_committed_frame_with_the_class_colours_where_the_masks_are(run, tmp_path):
    out = tmp_path / "overlay.mp4"
    done = render_stream(str(run), "traffic", out, side_by_side=True)
    frames = decoded(out)
    assert done.frames == len(frames) == FRAMES and frames[0].shape == (H, 2 * W, 3)
    source = SyntheticSource("traffic", seed=3, width=W, height=H, frames=FRAMES)
    masks = decode_masks(read_stream_table(StreamArea(open_store(str(run)), "traffic"), "masks"))
    # Pixels under the legend, the titles or the status line, found by drawing them on a grey frame.
    grey = np.full((H, W, 3), 128, np.uint8)
    drawn = (annotate(grey, CLASSES, "frame 00  KEYFRAME (ladder)  stride 256  mIoU 0.000", "teacher") != 128).any(-1)
    covered = np.zeros((H, W), bool)
    rows, cols = np.nonzero(drawn)
    for r, c in zip(rows, cols, strict=True):
        covered[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3] = True
    hits = 0
    for i, picture in enumerate(frames):
        frame = source.frame(i)
        for half, labels in ((picture[:, :W], frame.truth), (picture[:, W:], masks[i])):
            for cls in (1, 2, 3):
                where = (labels == cls) & ~covered
                if where.sum() < 12:
                    continue
                expected = blend(frame.image, labels)[where].astype(float).mean(axis=0)
                raw = frame.image[where].astype(float).mean(axis=0)
                got = half[where].astype(float).mean(axis=0)
                assert np.abs(got - expected).mean() < np.abs(got - raw).mean(), (i, cls)
                hits += 1
    assert hits >= 10  # the check above ran on real class regions, teacher and student side


def test_render_a_range_by_cli(run, tmp_path, capsys):
    out = tmp_path / "part.mp4"
    assert main(["render", str(run), "--stream", "traffic", "--from", "5", "--to", "12", "--out", str(out),
                 "--quiet"]) == 0
    assert len(decoded(out)) == 8
    assert f"wrote {out}: frames 5..12 (8 frames, {W}x{H})" in capsys.readouterr().out


def test_bad_input_is_one_line(run, tmp_path, capsys):
    assert main(["render", str(run), "--stream", "nope", "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stream 'nope' is not in" in err and "traffic" in err
    empty = tmp_path / "empty"
    StreamArea(open_store(str(empty)), "cam").store.put("streams/stream_id=cam/stream.json", b"{}")
    assert main(["render", str(empty), "--stream", "cam"]) == 2
    assert "has no committed masks" in capsys.readouterr().err
    with pytest.raises(InputError, match="side-by-side needs"):
        _archive_run(tmp_path, side_by_side=True)


@pytest.mark.parametrize(("name", "problem"), [("rnd", "it has no file extension"),
                                              ("x.txt", ".txt is not a video container"),
                                              ("x.webmx", ".webmx is not a video container")])
def test_an_out_that_is_not_a_video_container_is_one_line(run, tmp_path, capsys, name, problem):
    out = tmp_path / name
    assert main(["render", str(run), "--stream", "traffic", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write a video to {out}: {problem}" in err and ".mp4" in err
    assert not out.exists()


def _archive_run(tmp_path, side_by_side=False):
    clip = write_synthetic(SyntheticSource("static_easy", seed=1, width=W, height=H, frames=16), tmp_path / "clip")
    out = tmp_path / "archive-run"
    config = load_config(overrides=CONFIG, environ={})
    teacher = build_teacher(f"replay:{clip.labels}", config.teacher, config.classes)
    distill_stream(Spec(str(clip.video), "clip"), str(out), config, teacher, StreamOptions(segment_frames=8))
    return render_stream(str(out), "clip", tmp_path / "o.mp4", side_by_side=side_by_side), clip, out


def test_a_moved_source_video_is_named_and_found_again_with_input(tmp_path, capsys):
    done, clip, out = _archive_run(tmp_path)
    assert done.frames == 16
    moved = tmp_path / "moved.mp4"
    shutil.move(clip.video, moved)
    assert main(["render", str(out), "--stream", "clip", "--out", str(tmp_path / "b.mp4"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the source of stream clip cannot be opened" in err and "--input" in err
    assert main(["render", str(out), "--stream", "clip", "--out", str(tmp_path / "b.mp4"), "--quiet",
                 "--input", str(moved)]) == 0
    assert len(decoded(tmp_path / "b.mp4")) == 16
    stream_json = next(out.glob("streams/*/stream.json"))
    stream_json.write_text(json.dumps({k: v for k, v in json.loads(stream_json.read_text()).items() if k != "input"}))
    capsys.readouterr()
    assert main(["render", str(out), "--stream", "clip", "--out", str(tmp_path / "c.mp4"), "--quiet"]) == 2
    assert "names no input" in capsys.readouterr().err
