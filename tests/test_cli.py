import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import odist
from odist.cli import main
from odist.config import DEFAULT_CLASSES, load_config
from odist.models.teachers.replay import write_labels
from odist.storage.checkpoint import load_checkpoint
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table
from odist.video.export import write_synthetic
from odist.video.synthetic import SyntheticSource

W, H = 96, 64
TRAIN_FRAMES = 120
CLIP_FRAMES = 24
COMMON = ["--quiet", "--set", "student.width=0.25", "--set", "threads=1"]
SYNTHETIC = ["synthetic:static_easy", "--width", str(W), "--height", str(H)]
SUMMARY_KEYS = {"frames", "keyframes", "updates", "miou", "miou_foreground", "class_iou", "speedup_cost_model",
                "speedup_measured", "student_gflops_per_frame", "teacher_gflops_per_frame"}


@pytest.fixture(autouse=True, scope="module")
def restore_threads():
    # Runs pass threads=1, which sets torch's global thread count; give it back afterwards.
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def distill(*args: str) -> int:
    return main(["distill", *COMMON, *args])


def error_line(capsys) -> str:
    """The one line a failed command printed on stderr."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("odist: error: ")
    return lines[0]


def stream(out: Path, stream_id: str = "static_easy") -> StreamArea:
    return StreamArea(open_store(str(out)), stream_id)


def summaries(out: Path) -> list[Path]:
    return list(out.rglob("summary.json")) if out.exists() else []


def masks_of(area: StreamArea) -> list[np.ndarray]:
    by_index = decode_masks(read_stream_table(area, "masks"))
    assert sorted(by_index) == list(range(len(by_index)))
    return [by_index[i] for i in range(len(by_index))]


def ious(pred: np.ndarray, truth: np.ndarray, num_classes: int = len(DEFAULT_CLASSES)) -> np.ndarray:
    """Per-class IoU of two class maps for the classes the truth contains (NaN elsewhere), in plain numpy."""
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        p, t = pred == c, truth == c
        if t.any():
            out[c] = np.logical_and(p, t).sum() / np.logical_or(p, t).sum()
    return out


def stream_miou(pairs) -> float:
    """mIoU of TP/FP/FN summed over all (prediction, truth) pairs, over classes the truth contains."""
    tp = np.zeros(len(DEFAULT_CLASSES))
    union = np.zeros(len(DEFAULT_CLASSES))
    in_truth = np.zeros(len(DEFAULT_CLASSES), bool)
    for pred, truth in pairs:
        for c in range(len(DEFAULT_CLASSES)):
            p, t = pred == c, truth == c
            tp[c] += np.logical_and(p, t).sum()
            union[c] += np.logical_or(p, t).sum()
            in_truth[c] |= bool(t.any())
    present = in_truth
    return float((tp[present] / union[present]).mean())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The run root of a completed, evaluated synthetic run."""
    out = tmp_path_factory.mktemp("trained") / "run"
    rc = distill(*SYNTHETIC, "--frames", str(TRAIN_FRAMES), "--evaluate", "--out", str(out))
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def checkpoint(trained) -> str:
    return stream(trained).summary()["checkpoint"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The same scene as ``trained``, exported as an H.264 clip plus label PNGs."""
    source = SyntheticSource("static_easy", width=W, height=H, frames=CLIP_FRAMES, seed=0)
    return write_synthetic(source, tmp_path_factory.mktemp("clip") / "clip")


# -- a complete run -------------------------------------------------------------------------------


def test_synthetic_run_writes_manifest_summary_and_checkpoint(trained):
    run = json.loads((trained / "run.json").read_text())
    assert run["odist_version"] == odist.__version__ and run["torch_version"] == torch.__version__
    area = stream(trained)
    assert area.status()[0] == "done" and area.failure() is None
    summary = area.summary()
    assert set(summary) >= SUMMARY_KEYS
    assert summary["frames"] == TRAIN_FRAMES
    assert 0 < summary["keyframes"] < TRAIN_FRAMES and summary["updates"] > 0
    assert 0 <= summary["miou_foreground"] <= summary["miou"] <= 1
    assert set(summary["class_iou"]) == set(DEFAULT_CLASSES)
    n, k, u = summary["frames"], summary["keyframes"], summary["updates"]
    inferred = summary["ledger"]["inferred_keyframes"]  # keyframes the student had inferred (confidence trigger)
    assert summary["speedup_cost_model"] == pytest.approx(n * 300 / ((n - k + inferred) * 7 + k * 300 + u * 30))
    assert math.isfinite(summary["speedup_measured"]) and summary["speedup_measured"] > 0
    assert summary["student_gflops_per_frame"] > 0 and summary["teacher_gflops_per_frame"] == 520.0

    manifest = json.loads((trained / "streams" / "stream_id=static_easy" / "stream.json").read_text())
    assert manifest["input"] == "synthetic:static_easy" and manifest["evaluate"] is True
    assert manifest["config"]["student"]["width"] == 0.25

    config = load_config(None, ["student.width=0.25"], environ={})
    payload = load_checkpoint(summary["checkpoint"], config.to_dict())
    assert payload["next_frame_index"] == TRAIN_FRAMES
    assert payload["state"]["distiller"]["ledger"]["frames"] == TRAIN_FRAMES


def test_records_and_masks_cover_every_frame(trained):
    area = stream(trained)
    summary = area.summary()
    records = read_stream_table(area, "records").to_pydict()
    assert records["frame_index"] == list(range(TRAIN_FRAMES))
    assert sum(records["keyframe"]) == summary["keyframes"]
    assert sum(records["updates"]) == summary["updates"]
    assert records["keyframe"][0] is True
    assert all(0 <= m <= 1 for m in records["miou"])

    masks = masks_of(area)
    assert len(masks) == TRAIN_FRAMES
    assert all(m.shape == (H, W) and m.dtype == np.uint8 and m.max() < len(DEFAULT_CLASSES) for m in masks)
    # The stored masks, scored independently against the scene's ground truth, give the run's mIoU.
    source = SyntheticSource("static_easy", width=W, height=H, frames=TRAIN_FRAMES, seed=0)
    truth = [frame.truth for frame in source]
    assert stream_miou(zip(masks, truth, strict=True)) == pytest.approx(summary["miou"])
    for i in (0, 1, TRAIN_FRAMES - 1):
        assert records["miou"][i] == pytest.approx(np.nanmean(ious(masks[i], truth[i])), abs=1e-6)


def test_max_frames_stops_early_and_reports_where_results_went(tmp_path, capsys):
    out = tmp_path / "o"
    assert distill(*SYNTHETIC, "--frames", "30", "--max-frames", "12", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "results: " in printed and str(out) in printed and "frames 12" in printed
    summary = stream(out).summary()
    # The oracle charged 0.3 s per keyframe; the measured speed-up says what it charged instead, and why.
    here = summary["teacher_cost_here"]
    assert (f"measured here: the student's own time and the {here['description']}, not the 0.3 s/frame "
            "the teacher charged") in printed
    assert summary["frames"] == 12 and summary["evaluated"] is False and summary["miou"] is None
    assert read_stream_table(stream(out), "records").num_rows == 12


# -- replay and warm start ------------------------------------------------------------------------


def test_replay_of_exported_labels_round_trips(clip, checkpoint, tmp_path):
    out = tmp_path / "replay"
    rc = distill(str(clip.video), "--teacher", f"replay:{clip.labels}", "--evaluate", "--init", checkpoint,
                 "--out", str(out))
    assert rc == 0
    area = stream(out, "video")
    summary = area.summary()
    assert summary["frames"] == clip.frames == CLIP_FRAMES
    assert summary["teacher"] == f"replay:{clip.labels}"
    # Every frame was scored against its exported label PNG.
    labels = [np.array(Image.open(clip.label_path(i))) for i in range(CLIP_FRAMES)]
    masks = masks_of(area)
    records = read_stream_table(area, "records").to_pydict()
    for i, (mask, label) in enumerate(zip(masks, labels, strict=True)):
        assert records["miou"][i] == pytest.approx(np.nanmean(ious(mask, label)), abs=1e-6)
    assert summary["miou"] == pytest.approx(stream_miou(zip(masks, labels, strict=True)))
    # Warm-started on the same scene, the student is accurate on the decoded video too.
    assert summary["miou"] > 0.5


def test_init_warm_starts_from_learned_weights(checkpoint, tmp_path):
    frozen = [*SYNTHETIC, "--frames", "4", "--evaluate", "--set", "distill.max_updates=0"]
    assert distill(*frozen, "--out", str(tmp_path / "cold")) == 0
    assert distill(*frozen, "--init", checkpoint, "--out", str(tmp_path / "warm")) == 0
    # Without updates the student never moves: the warm run's weights are the checkpoint's, bit for bit, and
    # the cold run's are not (properties of the warm start itself, not of how well training went).
    config = json.loads(next((tmp_path / "warm").glob("streams/*/stream.json")).read_text())["config"]
    learned = load_checkpoint(checkpoint, config)["state"]["distiller"]["student"]

    def final_weights(out: Path) -> dict[str, torch.Tensor]:
        return load_checkpoint(stream(out).summary()["checkpoint"], config)["state"]["distiller"]["student"]

    warm_weights, cold_weights = final_weights(tmp_path / "warm"), final_weights(tmp_path / "cold")
    assert learned.keys() == warm_weights.keys()
    assert all(torch.equal(learned[k], warm_weights[k]) for k in learned)
    assert not all(torch.equal(learned[k], cold_weights[k]) for k in learned)
    # ... so the first prediction is the learned model's, not the random one's.
    assert not np.array_equal(masks_of(stream(tmp_path / "warm"))[0], masks_of(stream(tmp_path / "cold"))[0])
    manifest = json.loads(next((tmp_path / "warm").glob("streams/*/stream.json")).read_text())
    assert (manifest["init"]["uri"], manifest["init"]["chosen_by"]) == (checkpoint, "--init")
    assert manifest["init"]["weight_digest"].startswith("sha256:")


def test_init_from_another_width_is_a_clean_error(checkpoint, tmp_path, capsys):
    out = tmp_path / "o"
    rc = distill(*SYNTHETIC, "--frames", "4", "--init", checkpoint, "--set", "student.width=0.5", "--out", str(out))
    assert rc != 0
    line = error_line(capsys)
    assert Path(checkpoint).name in line and "width" in line
    assert not summaries(out)


# -- bad inputs -----------------------------------------------------------------------------------


def _corrupt_video(tmp: Path, clip) -> tuple[list[str], str]:
    path = tmp / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return [str(path)], "corrupt.mp4"


def _small_labels(tmp: Path, clip) -> tuple[list[str], str]:
    labels = tmp / "small_labels"
    for i in range(CLIP_FRAMES):
        write_labels(labels, i, np.zeros((H // 2, W // 2), np.uint8))
    return [str(clip.video), "--teacher", f"replay:{labels}"], "000000.png"


def _corrupt_checkpoint(tmp: Path, clip) -> tuple[list[str], str]:
    path = tmp / "broken.pt"
    path.write_bytes(b"not a checkpoint" * 64)
    return [*SYNTHETIC, "--init", str(path)], "broken.pt"


BAD_INPUTS = {
    "missing video": lambda tmp, clip: ([str(tmp / "missing.mp4")], "missing.mp4"),
    "corrupt video": _corrupt_video,
    "unknown scenario": lambda tmp, clip: (["synthetic:nope"], "nope"),
    "unknown teacher": lambda tmp, clip: ([*SYNTHETIC, "--teacher", "bogus"], "bogus"),
    "negative lr": lambda tmp, clip: ([*SYNTHETIC, "--set", "distill.lr=-1"], "distill.lr"),
    "unknown key": lambda tmp, clip: ([*SYNTHETIC, "--set", "nope.x=1"], "nope"),
    "missing config": lambda tmp, clip: ([*SYNTHETIC, "--config", str(tmp / "nope.yaml")], "nope.yaml"),
    "oracle on a video": lambda tmp, clip: ([str(clip.video), "--teacher", "oracle"], "oracle"),
    "missing label dir": lambda tmp, clip: ([str(clip.video), "--teacher", f"replay:{tmp / 'nolabels'}"],
                                            "nolabels"),
    "labels of another size": _small_labels,
    "zero max frames": lambda tmp, clip: ([*SYNTHETIC, "--max-frames", "0"], "--max-frames"),
    "live url": lambda tmp, clip: (["rtsp://127.0.0.1:9/x"], "rtsp://"),
    "missing checkpoint": lambda tmp, clip: ([*SYNTHETIC, "--init", str(tmp / "gone.pt")], "gone.pt"),
    "corrupt checkpoint": _corrupt_checkpoint,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_error_line(case, clip, tmp_path, capsys):
    args, needle = BAD_INPUTS[case](tmp_path, clip)
    out = tmp_path / "out"
    rc = distill(*args, "--frames", "16", "--out", str(out))
    assert rc != 0
    assert needle in error_line(capsys)
    assert not summaries(out)


def test_failure_mid_stream_is_recorded_as_failed(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert distill(str(clip.video), "--teacher", "oracle", "--out", str(out)) != 0
    error_line(capsys)
    area = stream(out, "video")
    assert area.summary() is None
    assert area.status()[0] == "failed" and "ground truth" in area.failure()["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_one_error_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert distill(*SYNTHETIC, "--frames", "4", "--device", "cuda", "--out", str(out)) != 0
    assert "cuda" in error_line(capsys)
    assert not out.exists()


def test_stream_with_results_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "busy"
    assert distill(*SYNTHETIC, "--frames", "4", "--out", str(out)) == 0
    first = stream(out).summary()
    capsys.readouterr()
    assert distill(*SYNTHETIC, "--frames", "6", "--out", str(out)) != 0
    line = error_line(capsys)
    assert "static_easy" in line and str(out) in line
    assert stream(out).summary() == first
    assert distill(*SYNTHETIC, "--frames", "6", "--out", str(out), "--overwrite") == 0
    assert stream(out).summary()["frames"] == 6


def test_failed_overwrite_leaves_no_stale_summary(trained, clip, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(trained, out)
    rc = distill(str(clip.video), "--teacher", "oracle", "--stream-id", "static_easy", "--out", str(out),
                 "--overwrite")
    assert rc != 0
    error_line(capsys)
    area = stream(out)
    assert area.summary() is None and area.commits() == []
    assert not summaries(out) and not list(out.rglob("*.pt"))


def test_console_script_prints_one_error_line(tmp_path):
    script = shutil.which("odist", path=os.path.dirname(sys.executable))
    assert script is not None, "the odist console script is not installed next to this Python"
    missing = tmp_path / "missing.mp4"
    proc = subprocess.run([script, "distill", str(missing), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odist: error: ") and str(missing) in lines[0]


FRAMES_KILLED = 300  # long enough that a SIGTERM comes after the first commit and before the end


def test_sigterm_to_odist_run_is_one_line_exit_143_and_a_resubmission_continues(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    argv = [sys.executable, "-m", "odist.cli", "run", "synthetic:traffic", "--out", str(out), "--workers", "1",
            "--width", str(W), "--height", str(H), "--frames", str(FRAMES_KILLED), "--segment-frames", "8", *COMMON]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (out / "streams").is_dir() or StreamArea(open_store(str(out)), "traffic").last_commit() is None:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "odist run committed nothing in 180 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert "SIGTERM received" not in stderr and "Traceback" not in stderr, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith("odist: terminated") and "run the same command again" in line
    area = StreamArea(open_store(str(out)), "traffic")
    committed = area.last_commit().next_frame_index
    assert 0 < committed < FRAMES_KILLED and area.summary() is None

    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    frames = read_stream_table(StreamArea(open_store(str(out)), "traffic"), "records").column("frame_index").to_pylist()
    assert frames == list(range(FRAMES_KILLED))  # every frame once: the resubmission went on from the commit
