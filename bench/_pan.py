"""A panning camera over a synthetic scene: a window sliding back and forth across a wider rendering.

``PannedSource`` renders a synthetic scenario ``WIDEN`` times wider than the frame and crops a frame-sized
window whose left edge moves ``speed`` frame widths a frame (1/80: 2 pixels at 160 wide), turning at either
end (a triangle wave), so every frame shows the same street from a moving viewpoint: no cut, constant
camera motion. Ground truth (the
class map and the boxes) is cropped with the image, so the oracle teacher labels what the window shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from odist.video.frame import Frame
from odist.video.synthetic import SyntheticSource

WIDEN = 1.5  # the rendering's width over the frame's
SUFFIX = "-pan"  # bench scenario names: "traffic-pan" is traffic seen by a panning camera


class PannedSource:
    """``frames`` frames of ``scenario`` through a ``width`` x ``height`` window panning ``speed`` widths a frame."""

    def __init__(self, scenario: str, *, seed: int, width: int, height: int, frames: int,
                 speed: float = 1 / 80) -> None:
        self.wide = SyntheticSource(scenario, seed=seed, width=round(width * WIDEN), height=height, frames=frames)
        self.width, self.speed = width, speed * width
        self.cuts = self.wide.cuts

    def __len__(self) -> int:
        return len(self.wide)

    def offset(self, index: int) -> int:
        """The window's left edge at frame ``index``."""
        span = self.wide.width - self.width
        travel = (index * self.speed) % (2 * span)
        return round(travel if travel <= span else 2 * span - travel)

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.wide:
            yield self.crop(frame)

    def crop(self, frame: Frame) -> Frame:
        x0 = self.offset(frame.index)
        window = slice(x0, x0 + self.width)
        truth = None if frame.truth is None else np.ascontiguousarray(frame.truth[:, window])
        boxes = frame.truth_boxes
        if boxes is not None:
            boxes = boxes.copy()
            boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]] - x0, 0, self.width)
            boxes = boxes[boxes[:, 3] > boxes[:, 1]]
        return replace(frame, image=np.ascontiguousarray(frame.image[:, window]), truth=truth, truth_boxes=boxes)
