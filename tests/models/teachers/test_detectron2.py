import importlib.util
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


@pytest.mark.skipif(not HAVE_DETECTRON2, reason="detectron2 is not installed")
def test_detectron2_labels_a_frame():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        teacher = build_teacher("detectron2", TeacherConfig(weights="random", batch_size=2), DEFAULT_CLASSES)
    frames = [Frame(index=i, image=np.zeros((64, 96, 3), dtype=np.uint8)) for i in range(3)]
    result = teacher.label(frames)
    assert len(result.labels) == 3 and result.labels[0].classes.shape == (64, 96)
    assert result.gflops > 0 and result.seconds > 0
