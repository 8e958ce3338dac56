"""``odist export``: the student a stream earned, as ONNX and as a torch.export program, gives the stream's masks."""

import json

import numpy as np
import pytest
import torch

from odist.cli import main
from odist.config import config_from_dict, load_config
from odist.distill.learning import new_student
from odist.distill.pipeline import StreamOptions, distill_stream
from odist.errors import OutputError
from odist.export import api as export_api
from odist.export import export_stream
from odist.export.model import as_input, odist_logits, top_two_gap
from odist.models.teachers import build_teacher
from odist.storage.checkpoint import parse_checkpoint
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table
from odist.video.manifest import StreamSpec
from odist.video.open import open_source

pytestmark = pytest.mark.usefixtures("one_torch_thread")

W, H, FRAMES = 96, 64, 16  # not the default size, nor the default four classes
CLASSES = ("background", "person")
# One keyframe, at frame 0: the student's weights after it are its final ones, so every later stored mask is
# what the final (exported) student computes.
# At most 8 updates on it (no early budget): this tiny student then still draws people, which the check needs.
CONFIG = ["classes=background,person", "student.width=0.25", "threads=1", "distill.freeze_after_keyframes=1",
          "distill.early_keyframes=0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = load_config(overrides=CONFIG, environ={})
    teacher = build_teacher("oracle", config.teacher, config.classes)
    distill_stream(StreamSpec("synthetic:static_easy", "door"), str(out), config, teacher,
                   StreamOptions(width=W, height=H, frames=FRAMES, seed=2, segment_frames=8))
    return out


@pytest.fixture(scope="module")
def stored(run):
    """(frames 1.., their stored masks): the frames after the stream's last update."""
    masks = decode_masks(read_stream_table(StreamArea(open_store(str(run)), "door"), "masks"))
    source = open_source("synthetic:static_easy", seed=2, width=W, height=H, frames=FRAMES)
    frames = [frame.image for frame in source][1:]
    assert len(masks) == FRAMES and {int(v) for m in masks.values() for v in np.unique(m)} <= {0, 1}
    return frames, [masks[i] for i in range(1, FRAMES)]


def assert_gives_the_stored_masks(classes: np.ndarray, frames: list[np.ndarray], masks: list[np.ndarray],
                                  student_logits: list) -> None:
    """Equal pixel for pixel, but for numerical ties of PyTorch's two best logits."""
    assert classes.shape == (len(frames), H, W) and classes.dtype == np.uint8
    for got, mask, logits in zip(classes, masks, student_logits, strict=True):
        differ = got != mask
        assert not (differ & (top_two_gap(logits) >= export_api.TIE)).any()
        assert differ.mean() < 1e-3
    assert any((mask == 1).any() for mask in masks)  # a class map with people in it, not all background


def final_student_logits(run, frames):
    """PyTorch's logits of ``frames`` with the stream's final weights, computed as the distiller does."""
    area = StreamArea(open_store(str(run)), "door")
    manifest = json.loads(area.store.get(area.key("stream.json")))
    commit = area.last_commit()
    payload = parse_checkpoint(area.store.get(commit.checkpoint), "final", manifest["config"])
    student = new_student(config_from_dict(manifest["config"]))
    student.load_state_dict(payload["state"]["distiller"]["student"])
    return [odist_logits(student, image) for image in frames]


def test_the_exported_onnx_student_gives_the_stored_masks_with_its_classes_and_size_in_the_metadata(
        run, stored, tmp_path, capsys):
    import onnxruntime

    out = tmp_path / "door.onnx"
    assert main(["export", str(run), "--stream", "door", "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"wrote {out} (ONNX, ") and "weights after frame 15" in printed[0]
    assert printed[1].startswith(f"classes background, person; input frames float32 (N, 3, {H}, {W}) RGB 0..255")
    assert printed[2] == f"checked: class maps equal PyTorch's on frames 0..7 ({8 * H * W} pixels)"
    assert [p.name for p in tmp_path.iterdir()] == ["door.onnx"]  # no partial file left beside it

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["odist"])
    assert meta["classes"] == list(CLASSES) and meta["num_classes"] == 2 and meta["stream_id"] == "door"
    assert meta["inputs"]["frames"]["shape"] == ["N", 3, H, W] and meta["inputs"]["frames"]["range"] == [0, 255]
    assert meta["normalisation"]["mean"] == [0.485, 0.456, 0.406] and meta["normalisation"]["in_model"]
    assert meta["weights_after_frame"] == FRAMES - 1 and meta["outputs"]["logits"]["shape"] == ["N", 2, H, W]
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("frames", ["N", 3, H, W])]

    frames, masks = stored
    logits, classes = session.run(["logits", "classes"], {"frames": as_input(frames)})
    assert logits.shape == (len(frames), 2, H, W)
    assert_gives_the_stored_masks(classes, frames, masks, final_student_logits(run, frames))


def test_the_exported_pt2_student_gives_the_stored_masks_and_each_frame_of_a_batch_its_own(run, stored, tmp_path):
    done = export_stream(str(run), "door", tmp_path / "door.pt2", check_frames=2, threads=1)
    assert (done.format, done.classes, done.width, done.height, done.checked_frames) == ("pt2", CLASSES, W, H, [0, 1])
    extra = {"odist.json": ""}
    program = torch.export.load(str(done.path), extra_files=extra)
    meta = json.loads(extra["odist.json"])
    assert meta["classes"] == list(CLASSES) and meta["inputs"]["frames"]["shape"] == ["N", 3, H, W]
    assert meta == done.metadata

    frames, masks = stored
    module = program.module()
    with torch.no_grad():
        logits, classes = module(torch.from_numpy(as_input(frames)))
        alone, _ = module(torch.from_numpy(as_input(frames[:1])))
    torch.testing.assert_close(alone[0], logits[0], atol=1e-4, rtol=1e-4)  # BatchNorm statistics are per frame
    assert_gives_the_stored_masks(classes.numpy(), frames, masks, final_student_logits(run, frames))


def test_an_export_that_disagrees_with_pytorch_fails_and_writes_nothing(run, tmp_path, monkeypatch):
    def wrong_runner(path, threads):
        return lambda batch: [None, np.full((len(batch), H, W), 1, np.uint8)]

    monkeypatch.setattr(export_api, "_program", lambda model, example: None)
    monkeypatch.setattr(export_api, "_write_pt2", lambda program, target, metadata: target.write_bytes(b"x"))
    monkeypatch.setattr(export_api, "_pt2_runner", wrong_runner)
    with pytest.raises(OutputError, match=r"disagrees with PyTorch on .* pixels of frame 0"):
        export_stream(str(run), "door", tmp_path / "door.pt2", check_frames=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["RUN", "--stream", "nope", "--out", "OUT/a.onnx"], r"stream .nope. is not in .* \(pick one of: door\)"),
    (["MISSING", "--stream", "door", "--out", "OUT/a.onnx"], "stream 'door' is not in .*missing"),
    (["RUN", "--stream", "door", "--out", "OUT/a.model"], "cannot tell which format to write to .*a.model"),
    (["RUN", "--stream", "door", "--out", "OUT/a.onnx", "--format", "pt2"], "cannot write pt2 to .*a.onnx"),
    (["RUN", "--stream", "door", "--out", "OUT/no/a.onnx"], "the folder .*no does not exist"),
    (["RUN", "--stream", "door", "--out", "OUT"], "cannot tell which format"),
    (["RUN", "--stream", "door", "--out", "OUT/a.pt2", "--check-frames", "0"], "check_frames 0 is not a positive"),
])
def test_a_bad_run_stream_format_or_output_is_one_line_and_exit_2(run, tmp_path, capsys, args, message):
    import re

    argv = [a.replace("RUN", str(run)).replace("MISSING", str(tmp_path / "missing")).replace("OUT", str(tmp_path))
            for a in args]
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("odist: error: ") and re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_refused_by_the_parser(run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(run), "--stream", "door", "--out", str(tmp_path / "a.onnx"), "--format", "tflite"])
    assert exit_.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
