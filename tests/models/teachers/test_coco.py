import numpy as np
import pytest
from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, MaskRCNN_ResNet50_FPN_Weights

from odist.config import DEFAULT_CLASS_GROUPS, DEFAULT_CLASSES
from odist.errors import ConfigError
from odist.models.teachers.coco import COCO_NAMES, CONTIGUOUS_TO_COCO_ID, TORCHVISION_CATEGORIES, class_map


def test_categories_match_torchvision_weights_metadata():
    assert list(TORCHVISION_CATEGORIES) == MaskRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]
    assert list(TORCHVISION_CATEGORIES) == MaskRCNN_ResNet50_FPN_V2_Weights.DEFAULT.meta["categories"]


def test_contiguous_ids_skip_unused_slots():
    assert len(COCO_NAMES) == 80 and len(CONTIGUOUS_TO_COCO_ID) == 80
    assert CONTIGUOUS_TO_COCO_ID[0] == 1 and CONTIGUOUS_TO_COCO_ID[-1] == 90
    assert TORCHVISION_CATEGORIES[CONTIGUOUS_TO_COCO_ID[11]] == "stop sign" == COCO_NAMES[11]
    assert CONTIGUOUS_TO_COCO_ID[11] == 13


def test_default_groups_map_to_stream_classes():
    lookup = class_map(DEFAULT_CLASS_GROUPS, DEFAULT_CLASSES)
    assert lookup.shape == (91,) and lookup.dtype == np.uint8
    expected = {1: 1, 3: 2, 6: 2, 8: 2, 2: 3, 4: 3}  # person; car, bus, truck; bicycle, motorcycle
    assert {int(i): int(c) for i, c in enumerate(lookup) if c} == expected


def test_unknown_coco_name_suggests_close_matches():
    with pytest.raises(ConfigError, match="motorbike") as info:
        class_map({"bike": ["motorbike"]}, DEFAULT_CLASSES)
    assert "motorcycle" in str(info.value)


def test_group_must_name_a_stream_class():
    with pytest.raises(ConfigError, match="boat"):
        class_map({"boat": ["boat"]}, DEFAULT_CLASSES)


def test_category_in_two_groups_is_rejected():
    with pytest.raises(ConfigError, match="'car'"):
        class_map({"vehicle": ["car"], "bike": ["car"]}, DEFAULT_CLASSES)
