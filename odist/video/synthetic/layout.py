"""Street layout of one viewpoint: horizon, perspective scale, sidewalks, road, lanes and actor paths.

``make_layout`` draws a :class:`Layout` from a seeded generator: the horizon row and the
pixels-per-metre slope that makes a person on the bottom row a fixed fraction of the image tall, the
rows of the far sidewalk, road lanes, near sidewalk and plaza, and the straight :class:`Path` each class
travels along (lanes for vehicles and bikes, sidewalks and plaza diagonals for people and bikes), each
starting and ending just off-image.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from odist.video.synthetic.scenarios import BIKE, PERSON, VEHICLE

# A person standing on the bottom image row is this fraction of the image height tall.
_PERSON_AT_BOTTOM = 0.28
_PERSON_M = 1.75
# Metres (times 0.6) that paths carrying each class reach past the image edges, so objects enter whole.
_MARGIN_M = {PERSON: 1.0, VEHICLE: 12.0, BIKE: 2.5}


@dataclass(frozen=True)
class Path:
    """A straight path of foot points from ``start`` to ``end`` ((x, y) pixels, both off-image)."""

    classes: tuple[int, ...]
    start: tuple[float, float]
    end: tuple[float, float]
    length_m: float
    lane_speed: float  # m/s of vehicles in this lane; 0 off the road

    def point(self, u: float) -> tuple[float, float]:
        return (self.start[0] + u * (self.end[0] - self.start[0]), self.start[1] + u * (self.end[1] - self.start[1]))

    @property
    def leftward(self) -> bool:
        return self.end[0] < self.start[0]


@dataclass(frozen=True)
class Layout:
    """Where things are in one viewpoint; rows in pixels, ``ppm(y)`` pixels per metre at row ``y``."""

    width: int
    height: int
    horizon: float
    slope: float
    far_walk: tuple[float, float]
    road: tuple[float, float]
    near_walk: tuple[float, float]
    lanes: tuple[float, ...]
    crosswalk_m: float
    style: int  # 0 city, 1 suburb, 2 park
    paths: tuple[Path, ...]

    def ppm(self, y: float) -> float:
        return max(self.slope * (y - self.horizon), 1e-3)


def make_layout(rng: np.random.Generator, width: int, height: int) -> Layout:
    horizon = rng.uniform(0.25, 0.42) * height
    slope = _PERSON_AT_BOTTOM * height / _PERSON_M / (height - horizon)

    def row(g: float) -> float:
        return horizon + g * (height - horizon)

    g_far = rng.uniform(0.09, 0.13)
    g_road0 = g_far + rng.uniform(0.05, 0.08)
    g_road1 = g_road0 + rng.uniform(0.28, 0.38)
    g_near = g_road1 + rng.uniform(0.08, 0.12)
    n_lanes = int(rng.choice([2, 3, 4], p=[0.35, 0.3, 0.35]))
    lanes = tuple(row(g_road0 + (i + 0.5) * (g_road1 - g_road0) / n_lanes) for i in range(n_lanes))
    layout = Layout(
        width=width, height=height, horizon=horizon, slope=slope,
        far_walk=(row(g_far), row(g_road0)), road=(row(g_road0), row(g_road1)), near_walk=(row(g_road1), row(g_near)),
        lanes=lanes, crosswalk_m=float(rng.uniform(-6, 6)), style=int(rng.integers(3)), paths=(),
    )
    return _with_paths(layout, rng, g_near)


def _with_paths(layout: Layout, rng: np.random.Generator, g_near: float) -> Layout:
    h = layout.height
    first = 1 if rng.random() < 0.5 else -1
    n = len(layout.lanes)
    paths: list[Path] = []
    for i, y in enumerate(layout.lanes):
        direction = first if i < n / 2 else -first
        if n % 2 and i == n // 2:
            direction = 1 if rng.random() < 0.5 else -1
        classes = (VEHICLE, BIKE) if i in (0, n - 1) else (VEHICLE,)
        paths.append(_straight(layout, classes, y, y, direction, float(rng.uniform(6.5, 10.5))))
    for y0, y1 in (layout.far_walk, layout.near_walk):
        for frac, direction in ((0.35, 1), (0.7, -1)):
            y = y0 + frac * (y1 - y0)
            paths.append(_straight(layout, (PERSON,), y, y, direction, 0.0))
    plaza = layout.horizon + g_near * (h - layout.horizon)
    for _ in range(2):
        ya, yb = rng.uniform(plaza + 0.08 * (h - plaza), h * 1.04, 2)
        paths.append(_straight(layout, (PERSON, BIKE), float(ya), float(yb), 1 if rng.random() < 0.5 else -1, 0.0))
    return dataclasses.replace(layout, paths=tuple(paths))


def _straight(layout: Layout, classes: tuple[int, ...], ya: float, yb: float, direction: int,
              lane_speed: float) -> Path:
    margin = max(_MARGIN_M[c] for c in classes) * 0.6
    xa = -margin * layout.ppm(ya) - 2
    xb = layout.width + margin * layout.ppm(yb) + 2
    start, end = ((xa, ya), (xb, yb)) if direction > 0 else ((xb, yb), (xa, ya))
    length_px = math.hypot(xb - xa, yb - ya)
    return Path(classes, start, end, length_px / layout.ppm((ya + yb) / 2), lane_speed)
