"""Synthetic street scenes with exact per-pixel ground truth.

A fixed camera looks across a street: sky, buildings, trees and lamp posts at the back, a far
sidewalk, a road with lanes, a near sidewalk and a plaza in front. People, vehicles and bikes
travel along paths at a steady speed with mild variation, enter and leave the frame, shrink with
distance and occlude each other by depth. Scenarios add lighting drift, density waves, scene cuts
between viewpoints and classes that only appear partway through the stream.

Every frame is a pure function of ``(seed, index)``: cut times and each path's arrivals are drawn
in time order from their own seeded generators, so ``source.frame(i)`` renders frame ``i``
directly, and a shorter stream is a prefix of a longer one with the same seed.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from odist.config import DEFAULT_CLASSES
from odist.errors import InputError
from odist.video.frame import Frame

CLASS_NAMES: tuple[str, ...] = DEFAULT_CLASSES
BACKGROUND, PERSON, VEHICLE, BIKE = 0, 1, 2, 3
SPEC_PREFIX = "synthetic:"

# A person standing on the bottom image row is this fraction of the image height tall.
_PERSON_AT_BOTTOM = 0.28
_PERSON_M = 1.75
# Focal length in image heights; turns pixels-per-metre into ground depth for road markings.
_FOCAL = 0.64
_MARGIN_M = {PERSON: 1.0, VEHICLE: 12.0, BIKE: 2.5}
_SPRITE_CACHE = 512

# (height m, length m, probability) of each variant: person adult/child, vehicle car/van/bus,
# bike bicycle/motorbike.
_VARIANTS: dict[int, tuple[tuple[float, float, float], ...]] = {
    PERSON: ((1.75, 0.9, 0.85), (1.25, 0.7, 0.15)),
    VEHICLE: ((1.45, 4.4, 0.65), (2.0, 5.0, 0.25), (3.0, 11.0, 0.10)),
    BIKE: ((1.05, 1.75, 0.7), (1.15, 2.05, 0.3)),
}
_VEHICLE_PALETTE = (
    (228, 228, 225), (28, 28, 32), (170, 172, 176), (105, 108, 112), (160, 28, 28),
    (32, 62, 140), (32, 72, 48), (200, 186, 150), (222, 180, 36),
)
_SKIN = ((255, 220, 185), (234, 190, 150), (198, 140, 100), (150, 100, 70), (96, 62, 42))
_HAIR = ((30, 24, 20), (70, 45, 25), (150, 110, 60), (210, 180, 120), (140, 140, 140))

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class ScenarioSpec:
    """The knobs of one named scenario. Times are seconds of stream time (``index / fps``).

    ``people``/``vehicles``/``bikes`` are the mean number of such objects visible on each path that
    carries them, at density 1. Density follows ``1 + density_swing * sin(2 pi t / density_period)``
    times a per-segment factor drawn log-uniformly from ``segment_density``. Brightness follows
    ``1 + light_swing * sin(2 pi t / light_period)``, and each channel drifts by ``tint_swing``.
    """

    description: str
    classes: tuple[int, ...] = (PERSON, VEHICLE, BIKE)
    late_classes: tuple[tuple[int, float], ...] = ()
    viewpoints: int = 1
    cut_seconds: tuple[float, float] | None = None
    people: float = 1.0
    vehicles: float = 1.0
    bikes: float = 0.4
    density_period: float = 30.0
    density_swing: float = 0.0
    segment_density: tuple[float, float] = (1.0, 1.0)
    light_period: float = 60.0
    light_swing: float = 0.0
    tint_swing: float = 0.0
    noise_sigma: float = 2.0
    camouflage: float = 0.2
    speed_jitter: float = 0.1

    def onset(self, cls: int) -> float | None:
        """The first second at which objects of ``cls`` may appear, or None if they never do."""
        if cls in self.classes:
            return 0.0
        return next((t for c, t in self.late_classes if c == cls), None)

    def count(self, cls: int) -> float:
        return {PERSON: self.people, VEHICLE: self.vehicles, BIKE: self.bikes}[cls]


SCENARIOS: dict[str, ScenarioSpec] = {
    "static_easy": ScenarioSpec(
        description="one street view, pedestrians only, few objects, nearly constant light, low noise",
        classes=(PERSON,), people=1.0, vehicles=0.0, bikes=0.0,
        light_swing=0.03, light_period=60.0, noise_sigma=1.5, camouflage=0.1, speed_jitter=0.05,
    ),
    "traffic": ScenarioSpec(
        description="one street view with people, vehicles and bikes; density waves and lighting drift",
        people=1.5, vehicles=1.5, bikes=0.5, density_period=40.0, density_swing=0.85,
        light_swing=0.15, light_period=40.0, tint_swing=0.04, noise_sigma=2.5, camouflage=0.2,
    ),
    "nonstationary": ScenarioSpec(
        description="scene cuts between three viewpoints every 5-9 s, density jumps per cut, bikes appear "
                    "from 10 s, strong lighting and tint drift, more camouflage and noise",
        classes=(PERSON, VEHICLE), late_classes=((BIKE, 10.0),), viewpoints=3, cut_seconds=(5.0, 9.0),
        people=1.0, vehicles=1.0, bikes=0.6, density_period=15.0, density_swing=0.5, segment_density=(0.3, 2.5),
        light_swing=0.35, light_period=20.0, tint_swing=0.12, noise_sigma=3.5, camouflage=0.35, speed_jitter=0.2,
    ),
}


def is_synthetic_spec(spec: str) -> bool:
    return spec.startswith(SPEC_PREFIX)


def parse_synthetic_spec(spec: str) -> str:
    """``"synthetic:traffic"`` -> ``"traffic"``; InputError for anything else or an unknown scenario."""
    if not is_synthetic_spec(spec):
        raise InputError(f"{spec!r} is not a synthetic source", f"write {SPEC_PREFIX}NAME")
    name = spec[len(SPEC_PREFIX):]
    _check_scenario(name)
    return name


def _check_scenario(name: str) -> ScenarioSpec:
    if name not in SCENARIOS:
        choices = ", ".join(SPEC_PREFIX + n for n in SCENARIOS)
        raise InputError(f"unknown synthetic scenario {name!r}", f"choose one of: {choices}")
    return SCENARIOS[name]


# ---------------------------------------------------------------------------------------------
# Shapes


class _Canvas:
    """An RGB float image plus a coverage mask; every shape touches only its bounding window."""

    def __init__(self, rgb: np.ndarray, mask: np.ndarray | None = None) -> None:
        self.rgb = rgb
        self.mask = mask
        self.h, self.w = rgb.shape[:2]

    @classmethod
    def blank(cls, h: int, w: int) -> _Canvas:
        return cls(np.zeros((h, w, 3), np.float32), np.zeros((h, w), bool))

    def _grid(self, y0: float, x0: float, y1: float, x1: float):
        iy0, ix0 = max(0, math.floor(y0)), max(0, math.floor(x0))
        iy1, ix1 = min(self.h, math.ceil(y1)), min(self.w, math.ceil(x1))
        if iy0 >= iy1 or ix0 >= ix1:
            return None
        yy = np.arange(iy0, iy1, dtype=np.float32)[:, None] + 0.5
        xx = np.arange(ix0, ix1, dtype=np.float32)[None, :] + 0.5
        return (slice(iy0, iy1), slice(ix0, ix1)), yy, xx

    def _fill(self, window: tuple[slice, slice], inside: np.ndarray, colour, cover: bool) -> None:
        inside = np.broadcast_to(inside, self.rgb[window].shape[:2])
        self.rgb[window][inside] = colour
        if cover and self.mask is not None:
            self.mask[window] |= inside

    def rect(self, y0: float, x0: float, y1: float, x1: float, colour, cover: bool = True) -> None:
        grid = self._grid(y0, x0, y1, x1)
        if grid:
            window, yy, xx = grid
            self._fill(window, (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1), colour, cover)

    def ellipse(self, cy: float, cx: float, ry: float, rx: float, colour, cover: bool = True) -> None:
        ry, rx = max(ry, 0.5), max(rx, 0.5)
        grid = self._grid(cy - ry, cx - rx, cy + ry, cx + rx)
        if grid:
            window, yy, xx = grid
            self._fill(window, ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0, colour, cover)

    def ring(self, cy: float, cx: float, r: float, half: float, colour, cover: bool = True) -> None:
        half = max(half, 0.55)
        grid = self._grid(cy - r - half, cx - r - half, cy + r + half, cx + r + half)
        if grid:
            window, yy, xx = grid
            self._fill(window, np.abs(np.hypot(yy - cy, xx - cx) - r) <= half, colour, cover)

    def segment(self, p: tuple[float, float], q: tuple[float, float], half: float, colour, cover: bool = True) -> None:
        """A thick line from ``p`` to ``q`` (both ``(y, x)``)."""
        half = max(half, 0.55)
        (py, px), (qy, qx) = p, q
        grid = self._grid(min(py, qy) - half, min(px, qx) - half, max(py, qy) + half, max(px, qx) + half)
        if grid:
            window, yy, xx = grid
            dy, dx = qy - py, qx - px
            t = np.clip(((yy - py) * dy + (xx - px) * dx) / max(dy * dy + dx * dx, 1e-6), 0.0, 1.0)
            self._fill(window, (yy - py - t * dy) ** 2 + (xx - px - t * dx) ** 2 <= half * half, colour, cover)

    def quad(self, y0: float, y1: float, top: tuple[float, float], bottom: tuple[float, float], colour,
             cover: bool = True) -> None:
        """A trapezoid spanning ``top`` (x0, x1) at row ``y0`` and ``bottom`` at row ``y1``."""
        grid = self._grid(y0, min(top[0], bottom[0]), y1, max(top[1], bottom[1]))
        if grid:
            window, yy, xx = grid
            f = (yy - y0) / max(y1 - y0, 1e-6)
            left, right = top[0] + f * (bottom[0] - top[0]), top[1] + f * (bottom[1] - top[1])
            self._fill(window, (yy >= y0) & (yy < y1) & (xx >= left) & (xx < right), colour, cover)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int = 4) -> np.ndarray:
    """Multi-octave value noise in about [-1, 1]; the pattern does not depend on the resolution."""
    total = np.zeros((h, w), np.float32)
    amp, norm = 1.0, 0.0
    for octave in range(octaves):
        cx = cells * 2**octave + 1
        cy = max(2, round(cx * h / w) + 1)
        grid = rng.uniform(-1.0, 1.0, (cy, cx)).astype(np.float32)
        total += amp * (_interp_matrix(h, cy) @ grid @ _interp_matrix(w, cx).T)
        norm += amp
        amp *= 0.5
    return total / norm


def _interp_matrix(n: int, cells: int) -> np.ndarray:
    """(n, cells) smoothstep interpolation weights from ``cells`` lattice values to ``n`` pixels."""
    pos = (np.arange(n) + 0.5) / n * (cells - 1)
    i0 = np.minimum(pos.astype(int), cells - 2)
    f = pos - i0
    f = f * f * (3 - 2 * f)
    m = np.zeros((n, cells), np.float32)
    m[np.arange(n), i0] = 1 - f
    m[np.arange(n), i0 + 1] = f
    return m


def _jitter(rng: np.random.Generator, colour, amount: float) -> RGB:
    c = np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)
    return (float(c[0]), float(c[1]), float(c[2]))


def _hsv(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*s), rng.uniform(*v))
    return (r * 255, g * 255, b * 255)


# ---------------------------------------------------------------------------------------------
# Viewpoints: street layout, paths and the painted background


@dataclass(frozen=True)
class _Path:
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
class _Layout:
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
    paths: tuple[_Path, ...]

    def ppm(self, y: float) -> float:
        return max(self.slope * (y - self.horizon), 1e-3)


def _make_layout(rng: np.random.Generator, width: int, height: int) -> _Layout:
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
    layout = _Layout(
        width=width, height=height, horizon=horizon, slope=slope,
        far_walk=(row(g_far), row(g_road0)), road=(row(g_road0), row(g_road1)), near_walk=(row(g_road1), row(g_near)),
        lanes=lanes, crosswalk_m=float(rng.uniform(-6, 6)), style=int(rng.integers(3)), paths=(),
    )
    return _with_paths(layout, rng, g_near)


def _with_paths(layout: _Layout, rng: np.random.Generator, g_near: float) -> _Layout:
    h = layout.height
    first = 1 if rng.random() < 0.5 else -1
    n = len(layout.lanes)
    paths: list[_Path] = []
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


def _straight(layout: _Layout, classes: tuple[int, ...], ya: float, yb: float, direction: int,
              lane_speed: float) -> _Path:
    margin = max(_MARGIN_M[c] for c in classes) * 0.6
    xa = -margin * layout.ppm(ya) - 2
    xb = layout.width + margin * layout.ppm(yb) + 2
    start, end = ((xa, ya), (xb, yb)) if direction > 0 else ((xb, yb), (xa, ya))
    length_px = math.hypot(xb - xa, yb - ya)
    return _Path(classes, start, end, length_px / layout.ppm((ya + yb) / 2), lane_speed)


def _ground_coords(layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel lateral position X and depth Z in metres on the ground plane (rows below the horizon)."""
    rows = np.arange(layout.height, dtype=np.float32) + 0.5
    ppm = np.maximum(layout.slope * (rows - layout.horizon), 1e-3)[:, None]
    cols = np.arange(layout.width, dtype=np.float32)[None, :] + 0.5
    x_m = (cols - layout.width / 2) / ppm
    z_m = np.broadcast_to(_FOCAL * layout.height / ppm, x_m.shape)
    return x_m, z_m


def _paint_background(layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    h, w = layout.height, layout.width
    canvas = _Canvas(np.empty((h, w, 3), np.float32))
    x_m, z_m = _ground_coords(layout)
    _paint_sky(canvas, layout, rng)
    _paint_ground(canvas, layout, rng, x_m, z_m)
    _paint_road_marks(canvas, layout, x_m, z_m)
    _paint_backdrop(canvas, layout, rng)
    grain = rng.normal(0.0, 2.5, (h, w, 1)).astype(np.float32)
    return np.clip(canvas.rgb + grain, 0, 255).astype(np.uint8)


def _paint_sky(canvas: _Canvas, layout: _Layout, rng: np.random.Generator) -> None:
    top, low = [((70, 120, 200), (170, 200, 230)), ((120, 125, 135), (190, 192, 195)),
                ((60, 70, 130), (235, 165, 110))][int(rng.integers(3))]
    t = np.clip((np.arange(canvas.h, dtype=np.float32) + 0.5) / layout.horizon, 0, 1)[:, None, None]
    sky = np.asarray(top, np.float32) * (1 - t) + np.asarray(low, np.float32) * t
    clouds = np.clip(_smooth_noise(rng, canvas.h, canvas.w, 3), 0, 1)[..., None] * rng.uniform(40, 90)
    canvas.rgb[:] = sky + clouds


def _paint_ground(canvas: _Canvas, layout: _Layout, rng: np.random.Generator, x_m: np.ndarray,
                  z_m: np.ndarray) -> None:
    h, w = canvas.h, canvas.w
    noise = _smooth_noise(rng, h, w, 6)[..., None]
    bands = [
        (layout.horizon, layout.far_walk[0], _jitter(rng, (85, 110, 70), 20), 18),
        (layout.far_walk[0], layout.far_walk[1], _jitter(rng, (165, 160, 150), 20), 12),
        (layout.road[0], layout.road[1], _jitter(rng, (72, 72, 76), 12), 10),
        (layout.near_walk[0], layout.near_walk[1], _jitter(rng, (175, 168, 155), 20), 12),
    ]
    plaza = [(80, 125, 60), (170, 150, 120), (130, 125, 120)][int(rng.integers(3))]
    bands.append((layout.near_walk[1], h, _jitter(rng, plaza, 20), 25))
    for y0, y1, colour, amp in bands:
        r0, r1 = round(y0), round(y1)
        canvas.rgb[r0:r1] = np.asarray(colour, np.float32) + amp * noise[r0:r1]
    for y0, y1 in (layout.far_walk, layout.near_walk):
        r0, r1 = round(y0), round(y1)
        seams = (np.abs(((x_m[r0:r1] + 50) % 1.5) - 0.75) > 0.7) | (np.abs((z_m[r0:r1] % 1.5) - 0.75) > 0.7)
        canvas.rgb[r0:r1][seams] *= 0.8
    for y in (layout.road[0], layout.road[1]):
        canvas.rect(y - 0.08 * layout.ppm(y), 0, y + 0.08 * layout.ppm(y), w, (200, 198, 190))


def _paint_road_marks(canvas: _Canvas, layout: _Layout, x_m: np.ndarray, z_m: np.ndarray) -> None:
    """Dashed lane lines, a double yellow centre line between opposite directions, a zebra crossing."""
    r0, r1 = round(layout.road[0]), round(layout.road[1])
    xs, zs = x_m[r0:r1], z_m[r0:r1]
    rows = canvas.rgb[r0:r1]
    lanes = layout.lanes
    bounds = [(a + b) / 2 for a, b in pairwise(lanes)]
    centre = len(lanes) // 2 - 1 if len(lanes) % 2 == 0 else None
    white, yellow = np.float32([225, 225, 220]), np.float32([220, 185, 40])
    for i, y in enumerate(bounds):
        half = 0.07 * layout.ppm(y)
        band = np.abs(np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5 - y) <= max(half, 0.5)
        if i == centre:
            rows[np.broadcast_to(band, xs.shape)] = yellow
        else:
            rows[band & (((xs + 100) % 9.0) < 3.0)] = white
    zebra = (np.abs(xs - layout.crosswalk_m) < 1.6) & ((zs % 1.0) < 0.5)
    rows[zebra] = rows[zebra] * 0.3 + white * 0.7


def _paint_backdrop(canvas: _Canvas, layout: _Layout, rng: np.random.Generator) -> None:
    """Buildings, trees and lamp posts standing on the back edge of the far sidewalk."""
    base = layout.far_walk[0]
    ppm = layout.ppm(base)
    x = float(rng.uniform(-30, 0)) * ppm
    while x < canvas.w:
        kind = rng.choice(3, p=[(0.8, 0.1, 0.1), (0.35, 0.5, 0.15), (0.0, 0.85, 0.15)][layout.style])
        width_m = rng.uniform(8, 25) if kind == 0 else rng.uniform(4, 8)
        if kind == 0:
            _paint_building(canvas, rng, x, x + width_m * ppm, base, ppm)
        elif kind == 1:
            _paint_tree(canvas, rng, x + width_m * ppm / 2, base, ppm)
        else:
            canvas.rect(base - 6 * ppm, x, base, x + max(0.15 * ppm, 1), (60, 62, 66))
            canvas.ellipse(base - 6 * ppm, x + 0.3 * ppm, 0.2 * ppm, 0.5 * ppm, (230, 225, 190))
        x += width_m * ppm + rng.uniform(0, 3) * ppm


def _paint_building(canvas: _Canvas, rng: np.random.Generator, x0: float, x1: float, base: float,
                    ppm: float) -> None:
    top = base - rng.uniform(8, 35) * ppm
    wall = _hsv(rng, (0.05, 0.35), (0.35, 0.85))
    canvas.rect(top, x0, base, x1, wall)
    shade = np.clip(np.asarray(wall, np.float32) * rng.uniform(0.3, 0.6), 0, 255)
    glass = _jitter(rng, (60, 80, 100), 30)
    step = 3.0 * ppm
    for wy in np.arange(top + step * 0.5, base - step, step):
        for wx in np.arange(x0 + step * 0.4, x1 - step * 0.6, step):
            canvas.rect(wy, wx, wy + 1.4 * ppm, wx + 1.2 * ppm, glass if rng.random() < 0.8 else shade)
    canvas.rect(base - 3 * ppm, x0, base - 2.7 * ppm, x1, shade)


def _paint_tree(canvas: _Canvas, rng: np.random.Generator, cx: float, base: float, ppm: float) -> None:
    trunk = rng.uniform(2, 4) * ppm
    crown = rng.uniform(2, 3.5) * ppm
    canvas.rect(base - trunk - crown * 0.5, cx - 0.2 * ppm, base, cx + 0.2 * ppm, (80, 60, 40))
    green = _jitter(rng, (60, 105, 50), 25)
    for _ in range(4):
        dy, dx = rng.uniform(-0.4, 0.4, 2) * crown
        canvas.ellipse(base - trunk - crown + dy, cx + dx, crown * 0.8, crown * 0.9, _jitter(rng, green, 15))


# ---------------------------------------------------------------------------------------------
# Objects: schedule, motion and sprites


@dataclass(frozen=True)
class _Look:
    """An instance's colours and variant; ``camouflage`` swaps ``main`` for the background's colour."""

    variant: int
    main: RGB
    second: RGB
    third: RGB
    fourth: RGB
    accessory: bool
    camouflage: bool


@dataclass(frozen=True)
class _Actor:
    key: tuple[int, int, int, int]  # (segment, path, class, arrival number)
    cls: int
    path: _Path
    t0: float  # seconds: the foot point is at the path's start
    on: float  # seconds during which it may be visible: [on, off)
    off: float
    duration: float  # seconds to traverse the path at the base speed
    wobble: tuple[float, float, float]  # speed variation amplitude, angular frequency, phase
    height_m: float
    length_m: float
    look: _Look

    def progress(self, t: float) -> float:
        """Fraction of the path covered at time ``t``; the speed factor is ``1 + a cos(w tau + phi)``."""
        a, omega, phi = self.wobble
        tau = t - self.t0
        return (tau + a / omega * (math.sin(omega * tau + phi) - math.sin(phi))) / self.duration


@dataclass(frozen=True)
class _Segment:
    start: float
    end: float  # may lie past the end of the stream
    viewpoint: int
    density: float


def _make_segments(spec: ScenarioSpec, seed: int, duration: float) -> list[_Segment]:
    rng = np.random.default_rng([seed, 7])
    lo, hi = np.log(spec.segment_density)
    segments: list[_Segment] = []
    start, view = 0.0, int(rng.integers(spec.viewpoints))
    while True:
        length = rng.uniform(*spec.cut_seconds) if spec.cut_seconds else math.inf
        segments.append(_Segment(start, start + length, view, float(np.exp(rng.uniform(lo, hi)))))
        start += length
        if start >= duration:
            return segments
        if spec.viewpoints > 1:
            view = (view + 1 + int(rng.integers(spec.viewpoints - 1))) % spec.viewpoints


def _speed(rng: np.random.Generator, cls: int, path: _Path) -> float:
    if cls == VEHICLE:
        return path.lane_speed * rng.uniform(0.95, 1.05)
    if cls == BIKE:
        return rng.uniform(3.5, 6.0) if path.lane_speed else rng.uniform(2.5, 4.5)
    return rng.uniform(1.0, 1.7)


def _mean_speed(cls: int, path: _Path) -> float:
    return {VEHICLE: path.lane_speed, BIKE: 4.75 if path.lane_speed else 3.5, PERSON: 1.35}[cls]


def _random_look(rng: np.random.Generator, cls: int, camouflage: float) -> _Look:
    probs = np.asarray([v[2] for v in _VARIANTS[cls]])
    variant = int(rng.choice(len(probs), p=probs / probs.sum()))
    if cls == PERSON:
        main = _hsv(rng, (0.05, 0.8), (0.15, 0.95))
        second = _jitter(rng, [(40, 50, 90), (50, 50, 55), (170, 150, 110), (25, 25, 30)][int(rng.integers(4))], 25)
        third = _jitter(rng, _SKIN[int(rng.integers(len(_SKIN)))], 10)
        fourth = _jitter(rng, _HAIR[int(rng.integers(len(_HAIR)))], 10)
    elif cls == VEHICLE:
        main = (_hsv(rng, (0.3, 0.9), (0.3, 0.9)) if rng.random() < 0.25
                else _jitter(rng, _VEHICLE_PALETTE[int(rng.integers(len(_VEHICLE_PALETTE)))], 12))
        second = _jitter(rng, (45, 55, 65), 20) if rng.random() < 0.7 else _jitter(rng, (120, 140, 160), 20)
        third, fourth = _jitter(rng, (35, 35, 38), 8), _jitter(rng, (150, 150, 150), 30)
    else:
        main = _hsv(rng, (0.4, 1.0), (0.3, 0.95))
        second, third, fourth = _jitter(rng, (30, 30, 32), 6), _jitter(rng, (120, 120, 125), 25), (40.0, 35.0, 30.0)
    return _Look(variant, main, second, third, fourth, bool(rng.random() < 0.3), bool(rng.random() < camouflage))


def _schedule_path(spec: ScenarioSpec, seed: int, segments: list[_Segment], s: int, p: int, path: _Path,
                   cls: int, duration: float) -> list[_Actor]:
    """The arrivals of one class on one path in one segment, drawn in time order (a thinned Poisson process)."""
    onset = spec.onset(cls)
    count = spec.count(cls)
    if onset is None or count <= 0:
        return []
    seg = segments[s]
    onset_cut = onset if onset > 0 else -math.inf  # classes present from the start also fill the first view
    rng = np.random.default_rng([seed, 3, s, p, cls])
    base = count * _mean_speed(cls, path) / path.length_m
    peak = base * seg.density * (1 + spec.density_swing)
    lead = path.length_m / (_mean_speed(cls, path) * 0.7)
    t, last, actors = seg.start - lead, -math.inf, []
    end = min(seg.end, duration)
    while True:
        t += rng.exponential(1 / peak)
        if t >= end:
            return actors
        accept = rng.random() * peak <= base * seg.density * _density(spec, seed, t)
        actor = _make_actor(rng, (s, p, cls, len(actors)), cls, path, t, seg, spec)
        gap = 1.6 * actor.length_m * actor.duration / path.length_m  # seconds to move 1.6 body lengths
        if accept and t >= onset_cut and t - last >= gap:
            actors.append(actor)
            last = t


def _density(spec: ScenarioSpec, seed: int, t: float) -> float:
    """The slow density wave shared by every path: ``1 + swing * sin(2 pi t / period + phase)``."""
    phase = 2 * math.pi * np.random.default_rng([seed, 9]).random()
    return max(0.0, 1 + spec.density_swing * math.sin(2 * math.pi * t / spec.density_period + phase))


def _make_actor(rng: np.random.Generator, key: tuple[int, int, int, int], cls: int, path: _Path, t0: float,
                seg: _Segment, spec: ScenarioSpec) -> _Actor:
    look = _random_look(rng, cls, spec.camouflage)
    height_m, length_m, _ = _VARIANTS[cls][look.variant]
    size = rng.uniform(0.9, 1.1)
    duration = path.length_m / _speed(rng, cls, path)
    a = spec.speed_jitter * rng.uniform(0.5, 1.0)
    wobble = (a, 2 * math.pi / rng.uniform(3.0, 9.0), rng.uniform(0, 2 * math.pi))
    off = min(t0 + duration / max(1 - a, 0.05) + 1e-6, seg.end)
    return _Actor(key, cls, path, t0, max(t0, seg.start), off, duration, wobble, height_m * size, length_m * size, look)


def _draw_person(c: _Canvas, hh: float, look: _Look, swing: float) -> None:
    cx = c.w / 2
    skin, shirt, pants, hair = look.third, look.main, look.second, look.fourth
    hip, foot = 0.52 * hh, 0.97 * hh
    for side in (-1, 1):
        c.segment((hip, cx + side * 0.045 * hh), (foot, cx + side * 0.045 * hh + side * swing * 0.11 * hh),
                  0.042 * hh, pants)
        c.ellipse(foot, cx + side * (0.045 + swing * 0.11) * hh + 0.02 * hh, 0.025 * hh, 0.045 * hh, (30, 28, 26))
    for side in (-1, 1):
        hand = (0.5 * hh, cx + side * (0.13 + swing * 0.05) * hh)
        c.segment((0.21 * hh, cx + side * 0.11 * hh), hand, 0.034 * hh, shirt)
        c.ellipse(hand[0], hand[1], 0.03 * hh, 0.03 * hh, skin)
    c.quad(0.18 * hh, 0.56 * hh, (cx - 0.125 * hh, cx + 0.125 * hh), (cx - 0.1 * hh, cx + 0.1 * hh), shirt)
    c.rect(0.13 * hh, cx - 0.028 * hh, 0.19 * hh, cx + 0.028 * hh, skin)
    c.ellipse(0.085 * hh, cx, 0.075 * hh, 0.06 * hh, skin)
    c.ellipse(0.055 * hh, cx, 0.05 * hh, 0.063 * hh, hair)
    if look.accessory:
        c.segment((0.2 * hh, cx - 0.08 * hh), (0.42 * hh, cx + 0.12 * hh), 0.012 * hh, (40, 30, 25))
        c.rect(0.38 * hh, cx + 0.1 * hh, 0.55 * hh, cx + 0.19 * hh, (shirt[2], shirt[0], shirt[1]))


def _draw_vehicle(c: _Canvas, hh: float, ww: float, look: _Look) -> None:
    body, glass, tyre, hub = look.main, look.second, look.third, look.fourth
    if look.variant == 0:
        c.quad(0.38 * hh, 0.82 * hh, (0.02 * ww, 0.96 * ww), (0.0, ww), body)
        c.quad(0.02 * hh, 0.4 * hh, (0.3 * ww, 0.66 * ww), (0.16 * ww, 0.84 * ww), body)
        c.quad(0.08 * hh, 0.38 * hh, (0.33 * ww, 0.63 * ww), (0.22 * ww, 0.79 * ww), glass, cover=False)
        c.rect(0.08 * hh, 0.5 * ww, 0.38 * hh, 0.53 * ww, body, cover=False)
        radius, wheels = 0.22 * hh, (0.19, 0.8)
    elif look.variant == 1:
        c.quad(0.03 * hh, 0.84 * hh, (0.02 * ww, 0.8 * ww), (0.0, ww), body)
        c.quad(0.1 * hh, 0.42 * hh, (0.73 * ww, 0.79 * ww), (0.73 * ww, 0.93 * ww), glass, cover=False)
        c.rect(0.1 * hh, 0.08 * ww, 0.35 * hh, 0.3 * ww, glass, cover=False)
        radius, wheels = 0.17 * hh, (0.17, 0.82)
    else:
        c.rect(0.02 * hh, 0.0, 0.88 * hh, ww, body)
        for wx in np.arange(0.04, 0.9, 0.11):
            c.rect(0.12 * hh, wx * ww, 0.45 * hh, (wx + 0.09) * ww, glass, cover=False)
        c.rect(0.12 * hh, 0.95 * ww, 0.7 * hh, 0.995 * ww, glass, cover=False)
        radius, wheels = 0.15 * hh, (0.15, 0.83)
    c.rect(0.62 * hh, 0.0, 0.66 * hh, ww, tuple(0.6 * v for v in body), cover=False)
    c.rect(0.44 * hh, 0.955 * ww, 0.52 * hh, ww, (245, 235, 180), cover=False)
    c.rect(0.44 * hh, 0.0, 0.52 * hh, 0.03 * ww, (200, 30, 30), cover=False)
    for wx in wheels:
        c.ellipse(hh - radius, wx * ww, radius, radius, tyre)
        c.ellipse(hh - radius, wx * ww, radius * 0.45, radius * 0.45, hub)


def _draw_bike(c: _Canvas, hh: float, ww: float, look: _Look) -> None:
    frame, tyre, metal = look.main, look.second, look.third
    r = 0.33 * hh if look.variant == 0 else 0.3 * hh
    rear, front = (hh - r, r + 1), (hh - r, ww - r - 1)
    half = 0.025 * hh
    if look.variant == 0:
        c.ring(rear[0], rear[1], r, half * 1.6, tyre)
        c.ring(front[0], front[1], r, half * 1.6, tyre)
        seat, crank, head = (0.36 * hh, 0.4 * ww), (hh - r, 0.47 * ww), (0.32 * hh, 0.74 * ww)
        for p, q in ((rear, seat), (seat, crank), (crank, rear), (seat, head), (head, crank), (head, front)):
            c.segment(p, q, half, frame)
        c.segment(head, (0.12 * hh, 0.7 * ww), half, metal)
        c.segment((0.12 * hh, 0.66 * ww), (0.12 * hh, 0.76 * ww), half, metal)
        c.ellipse(0.3 * hh, 0.4 * ww, 0.03 * hh, 0.08 * ww, look.fourth)
    else:
        for hub in (rear, front):
            c.ellipse(hub[0], hub[1], r, r, tyre)
            c.ellipse(hub[0], hub[1], r * 0.4, r * 0.4, metal)
        c.rect(0.5 * hh, 0.38 * ww, 0.8 * hh, 0.62 * ww, metal)
        c.ellipse(0.42 * hh, 0.55 * ww, 0.13 * hh, 0.17 * ww, frame)
        c.quad(0.3 * hh, 0.4 * hh, (0.22 * ww, 0.45 * ww), (0.25 * ww, 0.48 * ww), look.fourth)
        c.segment(front, (0.2 * hh, 0.76 * ww), half * 1.5, metal)
        c.segment((0.2 * hh, 0.76 * ww), (0.12 * hh, 0.7 * ww), half * 1.2, metal)
        c.segment(rear, (0.5 * hh, 0.4 * ww), half * 1.5, metal)


@dataclass(frozen=True)
class _Sprite:
    rgb: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) bool
    anchor: int  # column of the foot point


def _build_sprite(actor: _Actor, h: int, swing: float, main: RGB, texture: np.ndarray) -> _Sprite:
    """The actor drawn ``h`` pixels tall; everything depends on ``h`` only, so sprites can be cached by it."""
    ppm = h / actor.height_m
    look = dataclasses.replace(actor.look, main=main)
    w = max(3, math.ceil((actor.length_m if actor.cls != PERSON else 0.55 * actor.height_m) * ppm) + 2)
    c = _Canvas.blank(h, w)
    if actor.cls == PERSON:
        _draw_person(c, float(h), look, swing)
    elif actor.cls == VEHICLE:
        _draw_vehicle(c, float(h), float(w), look)
    else:
        _draw_bike(c, float(h), float(w), look)
    shade = (1.12 - 0.3 * (np.arange(h, dtype=np.float32) + 0.5) / h)[:, None, None]
    shift = 13 * sum(actor.key)
    rows, cols = (np.arange(h)[:, None] + shift) % texture.shape[0], (np.arange(w)[None, :] + shift) % texture.shape[1]
    tex = texture[rows, cols]
    rgb = np.clip(c.rgb * shade + tex[..., None] * 6.0, 0, 255).astype(np.uint8)
    mask = c.mask
    if actor.cls != PERSON and actor.path.leftward:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    return _Sprite(rgb, mask, w // 2)


# ---------------------------------------------------------------------------------------------
# The source


class SyntheticSource:
    """Street scenes with exact per-pixel ground truth; ``frame(i)`` equals the ``i``-th iterated frame."""

    def __init__(self, scenario: str, *, seed: int = 0, width: int = 640, height: int = 360, frames: int = 900,
                 fps: float = 30.0) -> None:
        self.spec = _check_scenario(scenario)
        _check_args(seed, width, height, frames, fps)
        self.scenario, self.seed = scenario, int(seed)
        self.width, self.height, self.num_frames, self.fps = int(width), int(height), int(frames), float(fps)
        self.class_names = CLASS_NAMES
        self.name = SPEC_PREFIX + scenario
        self.duration = self.num_frames / self.fps
        self._layouts = [_make_layout(np.random.default_rng([self.seed, 1, v]), self.width, self.height)
                         for v in range(self.spec.viewpoints)]
        self._backgrounds: dict[int, np.ndarray] = {}
        self._segments = _make_segments(self.spec, self.seed, self.duration)
        self._starts = [s.start for s in self._segments]
        self._actors = self._schedule()
        self._on = np.asarray([a.on for a in self._actors], np.float64)
        self._off = np.asarray([a.off for a in self._actors], np.float64)
        light = np.random.default_rng([self.seed, 4])
        self._light_phase = light.uniform(0, 2 * math.pi, 4)
        self._tint_period = light.uniform(0.7, 1.3, 3)
        # Sensor noise: one seeded tile, read at a per-frame offset; the 0.5 rounds on conversion to uint8.
        noise = np.random.default_rng([self.seed, 5]).standard_normal((height + 37, width + 37, 3), np.float32)
        self._noise = noise * np.float32(self.spec.noise_sigma) + np.float32(0.5)
        self._texture = np.random.default_rng([self.seed, 8]).normal(0, 1, (97, 89)).astype(np.float32)
        self._sprites: OrderedDict[tuple, _Sprite] = OrderedDict()

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Frame]:
        for index in range(self.num_frames):
            yield self.frame(index)

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}"
        return f"SyntheticSource({self.scenario!r}, seed={self.seed}, {size}, {self.num_frames} frames)"

    @property
    def cuts(self) -> tuple[int, ...]:
        """Frame indices at which a scene cut switches to another viewpoint."""
        found = []
        for start in self._starts[1:]:
            i = math.ceil(start * self.fps)
            i -= (i - 1) / self.fps >= start
            i += i / self.fps < start
            if i < self.num_frames:
                found.append(i)
        return tuple(found)

    def viewpoint_at(self, index: int) -> int:
        return self._segments[self._segment_at(index)].viewpoint

    def light_gain(self, index: int) -> np.ndarray:
        """The (3,) RGB gain that lighting drift applies to frame ``index``."""
        t = index / self.fps
        spec, ph = self.spec, self._light_phase
        gain = 1 + spec.light_swing * math.sin(2 * math.pi * t / spec.light_period + ph[0])
        tint = 1 + spec.tint_swing * np.sin(2 * math.pi * t / (spec.light_period * self._tint_period) + ph[1:])
        return (gain * tint).astype(np.float32)

    def density_at(self, index: int) -> float:
        """The arrival-rate multiplier at frame ``index``: the density wave times the segment's factor."""
        return _density(self.spec, self.seed, index / self.fps) * self._segments[self._segment_at(index)].density

    def frame(self, index: int) -> Frame:
        """Render frame ``index`` (0-based) with its truth map and visible-instance boxes."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} is outside 0..{self.num_frames - 1}")
        t = index / self.fps
        view = self.viewpoint_at(index)
        canvas = self._background(view).copy()
        truth = np.zeros((self.height, self.width), np.uint8)
        owner = np.zeros((self.height, self.width), np.uint16)
        stamped = []
        for k, (actor, u) in enumerate(self._placements(t), start=1):
            window = self._stamp(canvas, truth, owner, actor, u, k, view)
            if window is not None:
                stamped.append((actor.cls, window, k))
        image = self._expose(canvas, index)
        return Frame(index, image, timestamp=t, truth=truth, truth_boxes=_visible_boxes(owner, stamped))

    def _segment_at(self, index: int) -> int:
        return bisect_right(self._starts, index / self.fps) - 1

    def _background(self, view: int) -> np.ndarray:
        if view not in self._backgrounds:
            rng = np.random.default_rng([self.seed, 2, view])
            self._backgrounds[view] = _paint_background(self._layouts[view], rng)
        return self._backgrounds[view]

    def _schedule(self) -> list[_Actor]:
        actors: list[_Actor] = []
        for s, seg in enumerate(self._segments):
            for p, path in enumerate(self._layouts[seg.viewpoint].paths):
                for cls in path.classes:
                    actors += _schedule_path(self.spec, self.seed, self._segments, s, p, path, cls, self.duration)
        return actors

    def _placements(self, t: float) -> list[tuple[_Actor, float]]:
        """Actors on their path at ``t`` with the fraction covered, far (small y) first."""
        found = []
        for i in np.flatnonzero((self._on <= t) & (t < self._off)):
            actor = self._actors[i]
            u = actor.progress(t)
            if 0.0 <= u <= 1.0:
                found.append((actor.path.point(u)[1], actor.key, actor, u))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(actor, u) for _, _, actor, u in found]

    def _stamp(self, canvas: np.ndarray, truth: np.ndarray, owner: np.ndarray, actor: _Actor, u: float, k: int,
               view: int) -> tuple[slice, slice] | None:
        """Draw one actor at path fraction ``u`` into the frame buffers; return its window, if on-screen."""
        x, y = actor.path.point(u)
        ppm = self._layouts[view].ppm(y)
        h = max(2, round(actor.height_m * ppm))
        swing = 0.0
        if actor.cls == PERSON:
            swing = (0.0, 0.5, 1.0, 0.5)[int(u * actor.path.length_m / 0.3) % 4]  # feet together, apart, ...
        sprite = self._sprite(actor, h, swing, view)
        top, left = round(y) - h, round(x) - sprite.anchor
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + h, self.height), min(left + sprite.mask.shape[1], self.width)
        if y0 >= y1 or x0 >= x1:
            return None
        window = (slice(y0, y1), slice(x0, x1))
        crop = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
        mask = sprite.mask[crop]
        np.copyto(canvas[window], sprite.rgb[crop], where=mask[..., None])
        np.copyto(truth[window], actor.cls, where=mask)
        np.copyto(owner[window], k, where=mask)
        return window

    def _sprite(self, actor: _Actor, h: int, swing: float, view: int) -> _Sprite:
        key = (actor.key, h, swing)
        sprite = self._sprites.get(key)
        if sprite is None:
            main = self._camouflage(actor, view) if actor.look.camouflage else actor.look.main
            sprite = _build_sprite(actor, h, swing, main, self._texture)
            self._sprites[key] = sprite
            if len(self._sprites) > _SPRITE_CACHE:
                self._sprites.popitem(last=False)
        else:
            self._sprites.move_to_end(key)
        return sprite

    def _camouflage(self, actor: _Actor, view: int) -> RGB:
        """The background's mean colour where the actor crosses the middle of the image, slightly jittered."""
        layout = self._layouts[view]
        x, y = actor.path.point(0.5)
        h = actor.height_m * layout.ppm(y)
        y0, y1 = int(np.clip(y - h, 0, self.height - 1)), int(np.clip(y, 1, self.height))
        x0, x1 = int(np.clip(x - h / 2, 0, self.width - 1)), int(np.clip(x + h / 2, 1, self.width))
        patch = self._background(view)[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
        rng = np.random.default_rng([self.seed, 10, *actor.key])
        return _jitter(rng, patch.reshape(-1, 3).mean(axis=0), 14)

    def _expose(self, canvas: np.ndarray, index: int) -> np.ndarray:
        """Apply lighting drift and sensor noise."""
        out = canvas.astype(np.float32)
        flat = out.reshape(self.height, self.width * 3)  # a long inner axis multiplies much faster than (..., 3)
        np.multiply(flat, np.tile(self.light_gain(index), self.width), out=flat)
        if self.spec.noise_sigma > 0:
            dy, dx = np.random.default_rng([self.seed, 6, index]).integers(0, 37, 2)
            out += self._noise[dy:dy + self.height, dx:dx + self.width]
        else:
            out += 0.5
        np.clip(out, 0, 255, out=out)
        return out.astype(np.uint8)


def _visible_boxes(owner: np.ndarray, stamped: list[tuple[int, tuple[slice, slice], int]]) -> np.ndarray:
    """(N, 5) ``class, x0, y0, x1, y1`` (x1, y1 exclusive) of the pixels each instance still shows."""
    rows = []
    for cls, (sy, sx), k in stamped:
        mine = owner[sy, sx] == k
        ys, xs = np.flatnonzero(mine.any(axis=1)), np.flatnonzero(mine.any(axis=0))
        if len(ys):
            rows.append((cls, sx.start + xs[0], sy.start + ys[0], sx.start + xs[-1] + 1, sy.start + ys[-1] + 1))
    return np.asarray(rows, np.float32).reshape(-1, 5)


def _check_args(seed: int, width: int, height: int, frames: int, fps: float) -> None:
    def bad_int(value: object, low: int, high: int) -> bool:
        return isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high

    if bad_int(seed, 0, 2**63 - 1):
        raise InputError(f"synthetic seed {seed!r} is invalid", "pass a non-negative integer seed")
    if bad_int(width, 32, 4096) or bad_int(height, 32, 4096):
        raise InputError(f"synthetic frame size {width!r}x{height!r} is invalid",
                         "pass integer width and height between 32 and 4096")
    if bad_int(frames, 1, 10**7):
        raise InputError(f"synthetic frame count {frames!r} is invalid", "pass a positive number of frames")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= 1000:
        raise InputError(f"synthetic fps {fps!r} is invalid", "pass a frame rate in (0, 1000]")
