"""The unit that flows from a source to the distiller."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    ``index`` is the decode order from 0 (after frame-rate sampling); ``image`` is HxWx3 uint8 RGB.
    Synthetic sources also carry exact ground truth: ``truth`` (HxW uint8 class ids, 0 = background)
    and ``truth_boxes`` ((N, 5) float32 rows ``class_id, x0, y0, x1, y1`` in pixels).
    """

    index: int
    image: np.ndarray
    timestamp: float | None = None
    truth: np.ndarray | None = None
    truth_boxes: np.ndarray | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
