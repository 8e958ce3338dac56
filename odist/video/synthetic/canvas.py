"""Drawing primitives and noise helpers shared by the background painter and the sprite builder.

:class:`Canvas` is an RGB float image with an optional coverage mask whose shapes (rectangles,
ellipses, rings, thick segments, trapezoids) touch only their bounding window; ``smooth_noise`` makes
resolution-independent multi-octave value noise, and ``jitter``/``hsv`` draw seeded random colours.
All randomness comes from the generator passed in, so callers control the draw order exactly.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

RGB = tuple[float, float, float]


class Canvas:
    """An RGB float image plus a coverage mask; every shape touches only its bounding window."""

    def __init__(self, rgb: np.ndarray, mask: np.ndarray | None = None) -> None:
        self.rgb = rgb
        self.mask = mask
        self.h, self.w = rgb.shape[:2]

    @classmethod
    def blank(cls, h: int, w: int) -> Canvas:
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


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int = 4) -> np.ndarray:
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


def jitter(rng: np.random.Generator, colour, amount: float) -> RGB:
    c = np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)
    return (float(c[0]), float(c[1]), float(c[2]))


def hsv(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*s), rng.uniform(*v))
    return (r * 255, g * 255, b * 255)
