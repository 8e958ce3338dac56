"""Painting the static background of one viewpoint from its layout.

``paint_background`` renders sky with clouds, textured ground bands (grass, sidewalks with paving
seams, asphalt, plaza), kerbs, lane lines with a double yellow centre line and a zebra crossing, and a
backdrop of buildings, trees and lamp posts along the far sidewalk, then adds fixed grain and returns a
uint8 image. The result depends only on the layout and the generator it is given.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from odist.video.synthetic.canvas import Canvas, hsv, jitter, smooth_noise
from odist.video.synthetic.layout import Layout

# Focal length in image heights; turns pixels-per-metre into ground depth for road markings.
_FOCAL = 0.64


def _ground_coords(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel lateral position X and depth Z in metres on the ground plane (rows below the horizon)."""
    rows = np.arange(layout.height, dtype=np.float32) + 0.5
    ppm = np.maximum(layout.slope * (rows - layout.horizon), 1e-3)[:, None]
    cols = np.arange(layout.width, dtype=np.float32)[None, :] + 0.5
    x_m = (cols - layout.width / 2) / ppm
    z_m = np.broadcast_to(_FOCAL * layout.height / ppm, x_m.shape)
    return x_m, z_m


def paint_background(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    h, w = layout.height, layout.width
    canvas = Canvas(np.empty((h, w, 3), np.float32))
    x_m, z_m = _ground_coords(layout)
    _paint_sky(canvas, layout, rng)
    _paint_ground(canvas, layout, rng, x_m, z_m)
    _paint_road_marks(canvas, layout, x_m, z_m)
    _paint_backdrop(canvas, layout, rng)
    grain = rng.normal(0.0, 2.5, (h, w, 1)).astype(np.float32)
    return np.clip(canvas.rgb + grain, 0, 255).astype(np.uint8)


def _paint_sky(canvas: Canvas, layout: Layout, rng: np.random.Generator) -> None:
    top, low = [((70, 120, 200), (170, 200, 230)), ((120, 125, 135), (190, 192, 195)),
                ((60, 70, 130), (235, 165, 110))][int(rng.integers(3))]
    t = np.clip((np.arange(canvas.h, dtype=np.float32) + 0.5) / layout.horizon, 0, 1)[:, None, None]
    sky = np.asarray(top, np.float32) * (1 - t) + np.asarray(low, np.float32) * t
    clouds = np.clip(smooth_noise(rng, canvas.h, canvas.w, 3), 0, 1)[..., None] * rng.uniform(40, 90)
    canvas.rgb[:] = sky + clouds


def _paint_ground(canvas: Canvas, layout: Layout, rng: np.random.Generator, x_m: np.ndarray,
                  z_m: np.ndarray) -> None:
    h, w = canvas.h, canvas.w
    noise = smooth_noise(rng, h, w, 6)[..., None]
    bands = [
        (layout.horizon, layout.far_walk[0], jitter(rng, (85, 110, 70), 20), 18),
        (layout.far_walk[0], layout.far_walk[1], jitter(rng, (165, 160, 150), 20), 12),
        (layout.road[0], layout.road[1], jitter(rng, (72, 72, 76), 12), 10),
        (layout.near_walk[0], layout.near_walk[1], jitter(rng, (175, 168, 155), 20), 12),
    ]
    plaza = [(80, 125, 60), (170, 150, 120), (130, 125, 120)][int(rng.integers(3))]
    bands.append((layout.near_walk[1], h, jitter(rng, plaza, 20), 25))
    for y0, y1, colour, amp in bands:
        r0, r1 = round(y0), round(y1)
        canvas.rgb[r0:r1] = np.asarray(colour, np.float32) + amp * noise[r0:r1]
    for y0, y1 in (layout.far_walk, layout.near_walk):
        r0, r1 = round(y0), round(y1)
        seams = (np.abs(((x_m[r0:r1] + 50) % 1.5) - 0.75) > 0.7) | (np.abs((z_m[r0:r1] % 1.5) - 0.75) > 0.7)
        canvas.rgb[r0:r1][seams] *= 0.8
    for y in (layout.road[0], layout.road[1]):
        canvas.rect(y - 0.08 * layout.ppm(y), 0, y + 0.08 * layout.ppm(y), w, (200, 198, 190))


def _paint_road_marks(canvas: Canvas, layout: Layout, x_m: np.ndarray, z_m: np.ndarray) -> None:
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


def _paint_backdrop(canvas: Canvas, layout: Layout, rng: np.random.Generator) -> None:
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


def _paint_building(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float, base: float,
                    ppm: float) -> None:
    top = base - rng.uniform(8, 35) * ppm
    wall = hsv(rng, (0.05, 0.35), (0.35, 0.85))
    canvas.rect(top, x0, base, x1, wall)
    shade = np.clip(np.asarray(wall, np.float32) * rng.uniform(0.3, 0.6), 0, 255)
    glass = jitter(rng, (60, 80, 100), 30)
    step = 3.0 * ppm
    for wy in np.arange(top + step * 0.5, base - step, step):
        for wx in np.arange(x0 + step * 0.4, x1 - step * 0.6, step):
            canvas.rect(wy, wx, wy + 1.4 * ppm, wx + 1.2 * ppm, glass if rng.random() < 0.8 else shade)
    canvas.rect(base - 3 * ppm, x0, base - 2.7 * ppm, x1, shade)


def _paint_tree(canvas: Canvas, rng: np.random.Generator, cx: float, base: float, ppm: float) -> None:
    trunk = rng.uniform(2, 4) * ppm
    crown = rng.uniform(2, 3.5) * ppm
    canvas.rect(base - trunk - crown * 0.5, cx - 0.2 * ppm, base, cx + 0.2 * ppm, (80, 60, 40))
    green = jitter(rng, (60, 105, 50), 25)
    for _ in range(4):
        dy, dx = rng.uniform(-0.4, 0.4, 2) * crown
        canvas.ellipse(base - trunk - crown + dy, cx + dx, crown * 0.8, crown * 0.9, jitter(rng, green, 15))
