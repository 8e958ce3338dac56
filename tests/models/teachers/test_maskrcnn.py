import argparse
import warnings

import numpy as np
import pytest
import torch
from fast_teachers import FAST_MASKRCNN_OPTIONS as FAST
from torchvision.ops import FrozenBatchNorm2d

from odist.config import DEFAULT_CLASSES, TeacherConfig
from odist.errors import ConfigError, TeacherError
from odist.models.teachers import build_teacher
from odist.models.teachers.coco import COCO_NAMES
from odist.models.teachers.maskrcnn import ARCHS, MaskRCNNTeacher, _fetch_state_dict, parse_options
from odist.video.frame import Frame

# Every COCO category maps to some stream class, so random weights still paint pixels.
ALL_GROUPS = {"person": list(COCO_NAMES[:27]), "vehicle": list(COCO_NAMES[27:54]), "bike": list(COCO_NAMES[54:])}


def _config(**changes) -> TeacherConfig:
    base = dict(weights="random", arch="v1", score_threshold=0.0, class_groups=ALL_GROUPS, batch_size=2)
    return TeacherConfig(**{**base, **changes})


def _build(config: TeacherConfig, spec: str = f"maskrcnn:{FAST}") -> MaskRCNNTeacher:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_teacher(spec, config, DEFAULT_CLASSES)


def _frames(count: int = 3) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(index=i, image=rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)) for i in range(count)]


@pytest.fixture(scope="module")
def teacher() -> MaskRCNNTeacher:
    return _build(_config())


def test_random_weights_warn():
    with pytest.warns(UserWarning, match="random weights"):
        build_teacher(f"maskrcnn:{FAST}", _config(), DEFAULT_CLASSES)


def test_labels_a_batch_and_charges_measured_cost(teacher):
    frames = _frames(3)
    result = teacher.label(frames)
    assert len(result.labels) == 3
    for labels in result.labels:
        assert labels.classes.shape == (96, 128) and labels.classes.dtype == np.uint8
        assert labels.classes.max() < len(DEFAULT_CLASSES)
        assert labels.boxes.dtype == np.float32 and labels.boxes.shape[1] == 5
    assert any(labels.classes.any() for labels in result.labels)
    assert result.seconds > 0
    assert result.gflops == pytest.approx(3 * teacher.gflops_per_frame(96, 128))
    assert teacher.gflops_per_frame(96, 128) > 0


def test_v1_uses_frozen_batchnorm_like_torchvision_pretrained(teacher):
    norms = [m for m in teacher.model.modules() if isinstance(m, (torch.nn.BatchNorm2d, FrozenBatchNorm2d))]
    assert norms and all(isinstance(m, FrozenBatchNorm2d) and m.eps == 0.0 for m in norms)
    assert not any(key.endswith("num_batches_tracked") for key in teacher.model.state_dict())


def test_weights_none_explains_how_to_pass_them():
    with pytest.raises(TeacherError, match=r"needs weights.*teacher\.weights=PATH.*teacher\.weights=torchvision"):
        build_teacher("maskrcnn", TeacherConfig(weights=None), DEFAULT_CLASSES)


def test_saved_state_dict_round_trips(teacher, tmp_path):
    path = tmp_path / "teacher.pth"
    torch.save(teacher.model.state_dict(), path)
    frames = _frames(1)
    (expected,) = teacher.detect(frames)
    (got,) = _build(_config(weights=path.as_uri())).detect(frames)
    for key in ("scores", "labels", "boxes", "masks"):
        torch.testing.assert_close(got[key], expected[key])


def test_training_checkpoint_dicts_are_unwrapped(tmp_path):
    state = {"module.backbone.weight": torch.ones(2)}  # saved from DistributedDataParallel
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": state, "optimizer": {}, "args": argparse.Namespace(lr=0.1), "epoch": 3}, path)
    fetched, source = _fetch_state_dict(str(path), "v1", ARCHS["v1"])
    assert list(fetched) == ["backbone.weight"] and source == str(path)


def test_wrong_state_dict_names_file_and_arch(teacher, tmp_path):
    state = dict(teacher.model.state_dict())
    state.pop("roi_heads.mask_predictor.mask_fcn_logits.weight")
    state["roi_heads.box_predictor.cls_score.bias"] = torch.zeros(5)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(TeacherError) as info:
        _build(_config(weights=str(path)))
    message = str(info.value)
    assert str(path) in message and "arch v1" in message
    assert "1 missing keys" in message and "1 shape mismatches" in message


def test_unreadable_weights_are_teacher_errors(tmp_path):
    with pytest.raises(TeacherError, match="does not exist"):
        _build(_config(weights=str(tmp_path / "missing.pth")))
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(TeacherError, match="holds no state_dict"):
        _build(_config(weights=str(tmp_path / "list.pth")))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(TeacherError, match="cannot read"):
        _build(_config(weights=str(tmp_path / "junk.pth")))


def test_unreachable_url_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(TeacherError, match="cannot download"):
        _build(_config(weights="http://127.0.0.1:9/odist-test-weights.pth"))


def test_options_parse_and_reject_unknown_keys():
    assert parse_options("min_size=480, max_size=854") == {"min_size": 480, "max_size": 854}
    assert parse_options(None) == {}
    with pytest.raises(ConfigError, match="min_size"):
        parse_options("min_sz=3")
    with pytest.raises(ConfigError, match="unknown Mask R-CNN arch"):
        _build(_config(arch="v3"))


def test_v2_labels_a_frame():
    teacher = _build(_config(arch="v2"), spec=f"maskrcnn:{FAST}")
    result = teacher.label(_frames(1))
    assert result.labels[0].classes.shape == (96, 128) and result.gflops > 0


def test_bad_frame_image_is_reported_with_its_index(teacher):
    frame = Frame(index=9, image=np.zeros((96, 128), dtype=np.uint8))
    with pytest.raises(TeacherError, match="frame 9"):
        teacher.label([frame])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_teacher_error():
    with pytest.raises(TeacherError, match="--device cpu"):
        build_teacher("maskrcnn", _config(), DEFAULT_CLASSES, device="cuda")
