"""The oracle teacher: exact ground truth from synthetic sources, at a charged (simulated) cost."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from odist.config import TeacherConfig
from odist.errors import ConfigError, TeacherError
from odist.models.teachers.base import Labels, empty_boxes
from odist.models.teachers.charged import ChargedTeacher
from odist.models.teachers.registry import TEACHERS
from odist.video.frame import Frame


class OracleTeacher(ChargedTeacher):
    """Returns each frame's ``truth`` and ``truth_boxes``; only synthetic frames carry them."""

    name = "oracle"

    def label_frame(self, frame: Frame) -> Labels:
        if frame.truth is None:
            raise TeacherError(
                f"frame {frame.index} has no ground truth: the oracle teacher only works on synthetic inputs "
                "(synthetic:SCENARIO)",
                "use --teacher maskrcnn or --teacher replay:DIR to label videos",
            )
        if frame.truth.shape != (frame.height, frame.width):
            raise TeacherError(
                f"frame {frame.index}: ground truth is {frame.truth.shape}, the image is {frame.height}x{frame.width}",
                "synthetic sources must emit truth at the frame size",
            )
        boxes = empty_boxes() if frame.truth_boxes is None else np.asarray(frame.truth_boxes, dtype=np.float32)
        return Labels(classes=np.asarray(frame.truth, dtype=np.uint8), boxes=boxes.reshape(-1, 5))


@TEACHERS.register("oracle")
def build_oracle(arg: str | None, config: TeacherConfig, class_names: Sequence[str], device: str) -> OracleTeacher:
    """``oracle`` takes no argument and ignores the device."""
    if arg:
        raise ConfigError(f"the oracle teacher takes no argument, got {arg!r}", "write --teacher oracle")
    return OracleTeacher(config, class_names)
