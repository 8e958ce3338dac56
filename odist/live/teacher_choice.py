"""Which teacher a live run uses: one that can label live video, chosen and checked before Ray starts.

Live cameras carry no ground truth and drop frames, so the oracle and replay teachers cannot label them.
Without a teacher chosen (``auto``), a live run uses Mask R-CNN with torchvision's COCO weights (or the
``teacher.weights`` given); those are fetched into torch's cache, or found there, before Ray starts.
"""

from __future__ import annotations

from pathlib import Path

from odist.config import OdistConfig
from odist.errors import ConfigError
from odist.storage.location import parse_location
from odist.teacher_default import teacher_for_input

LIVE_TEACHER_FIX = ("pass --set teacher.weights=PATH_OR_URI (a torchvision Mask R-CNN state dict) to use Mask "
                    "R-CNN, or --teacher onnx:MODEL.onnx, or --teacher detectron2")


def live_teacher(config: OdistConfig) -> OdistConfig:
    """``config`` with a teacher for live video: the default (``auto``) becomes Mask R-CNN.

    Raises ``ConfigError`` when the teacher is the oracle or a replay of stored labels, or Mask R-CNN's weights
    file does not exist.
    """
    config = teacher_for_input(config, "live")  # the default: Mask R-CNN, with COCO weights unless others are set
    name = config.teacher.name.partition(":")[0].strip()
    weights = config.teacher.weights
    if name == "oracle":
        raise ConfigError("the oracle teacher needs synthetic ground truth, which live cameras do not carry",
                          LIVE_TEACHER_FIX)
    if name == "replay":
        raise ConfigError("the replay teacher reads stored labels by frame index, which live cameras do not have",
                          LIVE_TEACHER_FIX)
    if name == "maskrcnn":
        if weights is None:
            raise ConfigError("the Mask R-CNN teacher has no weights configured", LIVE_TEACHER_FIX)
        _check_local_weights(weights)
    return config


def _check_local_weights(weights: str) -> None:
    """A local weights path (or ``file://`` URI) must exist; hub names and URLs are fetched where the teacher runs."""
    location = parse_location(weights)
    if weights in ("random", "torchvision") or not location.is_local:
        return
    if not Path(location.path).is_file():
        raise ConfigError(f"Mask R-CNN weights file {location.path} does not exist", LIVE_TEACHER_FIX)
