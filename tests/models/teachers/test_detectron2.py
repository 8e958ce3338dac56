import importlib.util
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from odist.config import DEFAULT_CLASS_GROUPS, DEFAULT_CLASSES, TeacherConfig
from odist.errors import TeacherError
from odist.models.teachers import build_teacher
from odist.models.teachers.coco import class_map
from odist.models.teachers.detectron2 import instances_to_labels
from odist.video.frame import Frame

HAVE_DETECTRON2 = importlib.util.find_spec("detectron2") is not None


@pytest.mark.skipif(HAVE_DETECTRON2, reason="detectron2 is installed")
def test_missing_detectron2_says_how_to_install_it():
    with pytest.raises(TeacherError, match="not installed") as info:
        build_teacher("detectron2", TeacherConfig(weights="random"), DEFAULT_CLASSES)
    assert "git+https://github.com/facebookresearch/detectron2.git" in str(info.value)
    assert "--teacher maskrcnn" in str(info.value)


def test_contiguous_class_ids_map_through_coco_ids():
    h, w = 4, 6
    masks = torch.zeros(4, h, w, dtype=torch.bool)
    masks[0, 0, 0] = masks[1, 1, 1] = masks[2, 2, 2] = masks[3, 3, 3] = True
    instances = SimpleNamespace(
        scores=torch.tensor([0.9, 0.8, 0.7, 0.95]),
        # person, car, motorcycle (COCO id 4) and stop sign (COCO id 13: not grouped)
        pred_classes=torch.tensor([0, 2, 3, 11]),
        pred_boxes=SimpleNamespace(tensor=torch.tensor([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3], [3, 3, 4, 4.0]])),
        pred_masks=masks,
    )
    lookup = class_map(DEFAULT_CLASS_GROUPS, DEFAULT_CLASSES)
    labels = instances_to_labels(instances, lookup, (h, w), score_threshold=0.5)
    assert [labels.classes[i, i] for i in range(4)] == [1, 2, 3, 0]
    assert labels.boxes[:, 0].tolist() == [1, 2, 3]


VENDORED = "../shared/vendor/detectron2-02b5c4e2.tar.gz"
needs_detectron2 = pytest.mark.skipif(
    not HAVE_DETECTRON2,
    reason=f"detectron2 is not installed (.ci/run installs it from {VENDORED} when that file exists; "
           "users: pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git')")


@pytest.fixture
def tiny_config(tmp_path) -> str:
    """The model-zoo Mask R-CNN R50-FPN, resizing frames to 64 px and keeping few proposals: fast on a CPU."""
    from odist.models.teachers.detectron2 import DEFAULT_CONFIG, model_zoo_config

    path = tmp_path / "tiny_mask_rcnn.yaml"
    path.write_text(f"_BASE_: {model_zoo_config(DEFAULT_CONFIG)}\n"
                    "INPUT: {MIN_SIZE_TEST: 64, MAX_SIZE_TEST: 96}\n"
                    "MODEL: {RPN: {PRE_NMS_TOPK_TEST: 50, POST_NMS_TOPK_TEST: 20}}\n"
                    "TEST: {DETECTIONS_PER_IMAGE: 5}\n")
    return str(path)


def random_teacher(spec: str, **config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_teacher(spec, TeacherConfig(weights="random", **config), DEFAULT_CLASSES)


@needs_detectron2
def test_model_zoo_files_are_found_without_pkg_resources():
    from odist.models.teachers.detectron2 import DEFAULT_CONFIG, model_zoo_checkpoint_url, model_zoo_config

    assert model_zoo_config(DEFAULT_CONFIG).is_file()
    url = model_zoo_checkpoint_url(DEFAULT_CONFIG)
    assert url.startswith("https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/")
    with pytest.raises(TeacherError, match="no checkpoint"):
        model_zoo_checkpoint_url("COCO-InstanceSegmentation/no_such_model.yaml")
    with pytest.raises(TeacherError, match="cannot load detectron2 config"):
        random_teacher("detectron2:COCO-InstanceSegmentation/no_such_model.yaml")


@needs_detectron2
def test_detectron2_labels_frames_with_detectron2(tiny_config):
    teacher = random_teacher(f"detectron2:{tiny_config}", batch_size=2)
    assert type(teacher.predictor.model).__module__.startswith("detectron2.")
    assert teacher.seconds_device() == "cpu"
    frames = [Frame(index=i, image=np.random.default_rng(i).integers(0, 256, (48, 72, 3), dtype=np.uint8))
              for i in range(3)]
    result = teacher.label(frames)  # three frames in batches of two: detector_postprocess in inference mode
    assert len(result.labels) == 3 and result.labels[0].classes.shape == (48, 72)
    assert all(label.classes.max() < len(DEFAULT_CLASSES) for label in result.labels)
    assert result.gflops > 0 and result.seconds > 0


@needs_detectron2
def test_odist_distill_runs_with_the_detectron2_teacher(tiny_config, tmp_path, capsys):
    from odist.cli import main

    out = tmp_path / "run"
    code = main(["distill", "synthetic:traffic", "--width", "72", "--height", "48", "--frames", "6", "--quiet",
                 "--teacher", f"detectron2:{tiny_config}", "--set", "teacher.weights=random",
                 "--set", "student.width=0.25", "--set", "threads=1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "streams" / "stream_id=traffic" / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["keyframes"] >= 1
    assert summary["teacher_cost_here"]["origin"] == "this run"  # detectron2 ran on the student's device
