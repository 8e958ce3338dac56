"""The default teacher: the oracle for synthetic inputs, Mask R-CNN with torchvision's COCO weights for videos,
found in (or fetched into) torch's cache before the run root is touched; offline with none, one line."""

from __future__ import annotations

import json
import os

import pytest
import torch

from odist.cli import main
from odist.config import load_config
from odist.models.teachers import choice
from odist.models.teachers.maskrcnn import ARCHS, build_model, pretrained_url
from odist.teacher_default import teacher_for_input, teacher_for_inputs
from odist.video.export import write_synthetic
from odist.video.synthetic import SyntheticSource

TINY = ["--set", "student.width=0.25", "--set", "threads=1", "--quiet"]


def test_auto_is_the_oracle_for_synthetic_inputs_and_mask_rcnn_with_coco_weights_for_videos():
    config = load_config(environ={})
    assert config.teacher.name == "auto"
    assert teacher_for_input(config, "synthetic:traffic").teacher.name == "oracle"
    video = teacher_for_input(config, "s3://fleet/cam1.mp4").teacher
    assert (video.name, video.weights) == ("maskrcnn", "torchvision")
    own = teacher_for_input(load_config(overrides=["teacher.weights=/w.pt"], environ={}), "cam.mp4").teacher
    assert (own.name, own.weights) == ("maskrcnn", "/w.pt")
    chosen = load_config(overrides=["teacher.name=oracle"], environ={})
    assert teacher_for_input(chosen, "cam.mp4") is chosen  # a teacher named is kept
    assert teacher_for_inputs(config, ["synthetic:a", "synthetic:b"]).teacher.name == "oracle"
    assert teacher_for_inputs(config, ["synthetic:a", "cam.mp4"]).teacher.name == "maskrcnn"


@pytest.fixture
def clip(tmp_path):
    return write_synthetic(SyntheticSource("traffic", width=64, height=48, frames=2, seed=0), tmp_path / "clip")


def test_without_cached_weights_offline_a_video_fails_in_one_line_before_the_run_root_exists(
        clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("odist.models.teachers.maskrcnn.pretrained_url",
                        lambda arch: "http://127.0.0.1:9/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth")  # nothing listens
    out = tmp_path / "run"
    assert main(["distill", str(clip.video), "--out", str(out), *TINY]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("odist: error")]
    assert len(error) == 1 and "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth" in error[0], error
    assert "are not in torch's cache" in error[0] and "teacher.weights=PATH" in error[0]
    assert not out.exists()


def test_with_a_seeded_weights_cache_a_video_is_labelled_by_mask_rcnn(clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(choice, "_ANNOUNCED", set())
    torch_home = tmp_path / "torch"
    cached = torch_home / "hub" / "checkpoints" / os.path.basename(pretrained_url("v1"))
    cached.parent.mkdir(parents=True)
    config = load_config(overrides=["teacher.weights=random"], environ={}).teacher
    with pytest.warns(UserWarning, match="random weights"):
        torch.save(build_model(config).state_dict(), cached)  # stands in for the COCO file, seeded offline
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    out = tmp_path / "run"
    assert main(["distill", str(clip.video), "--out", str(out), "--max-frames", "1", *TINY]) == 0
    assert f"teacher: Mask R-CNN v1 with torchvision's COCO weights (from {cached})" in capsys.readouterr().err
    summary = json.loads((out / "streams" / "stream_id=video" / "summary.json").read_text())
    assert summary["teacher"] == "maskrcnn" and summary["frames"] == 1
    assert ARCHS["v1"].pretrained.url == pretrained_url("v1")
