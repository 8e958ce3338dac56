"""COCO category names and the mapping from COCO categories to a stream's classes."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import numpy as np

from odist.errors import ConfigError

# The 91 label slots of torchvision's COCO detection models (the original COCO category ids):
# slot 0 is the background and the "N/A" slots are ids that COCO 2017 never uses.
# Same list as ``torchvision.models.detection.MaskRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]``.
TORCHVISION_CATEGORIES: tuple[str, ...] = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella",
    "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "N/A",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "N/A", "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
_PLACEHOLDERS = frozenset({"__background__", "N/A"})

# The 80 real categories, in category-id order. Their positions are the contiguous ids 0..79 that
# detectron2 (and most other COCO pipelines) predict; ``CONTIGUOUS_TO_COCO_ID[i]`` is the torchvision
# slot of contiguous id ``i``.
CONTIGUOUS_TO_COCO_ID: np.ndarray = np.array(
    [i for i, name in enumerate(TORCHVISION_CATEGORIES) if name not in _PLACEHOLDERS], dtype=np.int64
)
COCO_NAMES: tuple[str, ...] = tuple(TORCHVISION_CATEGORIES[i] for i in CONTIGUOUS_TO_COCO_ID)
NUM_COCO_SLOTS = len(TORCHVISION_CATEGORIES)
_ID_BY_NAME = {TORCHVISION_CATEGORIES[i]: int(i) for i in CONTIGUOUS_TO_COCO_ID}


def class_map(class_groups: Mapping[str, Sequence[str]], class_names: Sequence[str]) -> np.ndarray:
    """A (91,) uint8 lookup from torchvision COCO label id to stream class id (0 when not grouped).

    ``class_groups`` maps a stream class name (an entry of ``class_names`` other than the background)
    to the COCO category names it absorbs, e.g. ``{"vehicle": ["car", "bus", "truck"]}``.
    """
    stream_ids = {name: i for i, name in enumerate(class_names)}
    lookup = np.zeros(NUM_COCO_SLOTS, dtype=np.uint8)
    owner: dict[str, str] = {}
    for group, coco_names in class_groups.items():
        stream_id = stream_ids.get(group, 0)
        if stream_id == 0:
            raise ConfigError(
                f"teacher.class_groups names {group!r}, which is not one of the stream's classes",
                f"name groups after {list(class_names[1:])}",
            )
        for coco_name in coco_names:
            lookup[_coco_id(coco_name, group)] = stream_id
            if owner.setdefault(coco_name, group) != group:
                raise ConfigError(
                    f"COCO category {coco_name!r} is in both teacher.class_groups.{owner[coco_name]} and .{group}",
                    "put each COCO category in one group",
                )
    return lookup


def _coco_id(name: str, group: str) -> int:
    """The torchvision label id of COCO category ``name``, or a ConfigError suggesting close names."""
    try:
        return _ID_BY_NAME[name]
    except KeyError:
        close = difflib.get_close_matches(name, COCO_NAMES, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else "see odist.models.teachers.coco.COCO_NAMES"
        raise ConfigError(
            f"teacher.class_groups.{group} names {name!r}, which is not a COCO category", hint
        ) from None
