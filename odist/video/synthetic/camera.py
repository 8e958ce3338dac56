"""A moving camera filming a synthetic scene: pans, zooms, handheld shake, PTZ tours, auto exposure, motion
blur and compression.

The scene is rendered on a *world* canvas larger than the frame (``CameraSpec.world_size``); the camera is a
window ``(cx, cy, z)`` on it (centre in world pixels, ``z`` world pixels per frame pixel: below 1 zooms in)
that is a pure function of stream time and shot, so ``frame(i)`` stays random-access. ``Camera.film`` samples
the window: the image bilinearly, the class map and the instance owners at the nearest world pixel of the
same mapping, so the ground truth moves with the image exactly. Motion blur averages the image along the
camera's motion during the shutter (the truth stays that of the frame's instant); auto exposure is a gain
that overshoots and settles after each change of the metered light; compression is a JPEG round trip.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from odist.video.synthetic.timeline import Segment

Window = tuple[float, float, float]  # centre x, centre y (world pixels), world pixels per frame pixel


@dataclass(frozen=True)
class CameraSpec:
    """How the camera moves and exposes. Lengths are in frame widths, times in seconds; 0 turns a part off.

    * ``pan``: the window sweeps this far and back over ``pan_period``;
    * ``zoom``: the field of view narrows to ``1 / (1 + zoom)`` and widens back over ``zoom_period``;
    * ``shake``: handheld shake, smooth sways of 1-6 Hz with this peak amplitude;
    * ``follow``: each shot drifts at up to this many frame widths a second (a handheld camera following
      the action), starting from its own framing;
    * ``presets``: a PTZ tour cycling through this many presets (position and zoom), ``dwell`` seconds at
      each, ``move`` seconds of fast pan and zoom between them;
    * ``exposure``: auto exposure; every ``exposure_every`` seconds on average (and at each cut) the metered
      light changes and the gain swings by up to ``exp(exposure)``, settling over ``exposure_tau``;
    * ``blur``: the fraction of the frame interval the shutter is open (motion blur along the camera motion);
    * ``jpeg``: JPEG quality of a compression round trip (blocking, ringing).
    """

    pan: float = 0.0
    pan_period: float = 8.0
    zoom: float = 0.0
    zoom_period: float = 10.0
    shake: float = 0.0
    follow: float = 0.0
    presets: int = 0
    dwell: float = 4.0
    move: float = 1.0
    exposure: float = 0.0
    exposure_every: float = 3.0
    exposure_tau: float = 0.5
    blur: float = 0.0
    jpeg: int = 0

    def merged(self, other: CameraSpec) -> CameraSpec:
        """This spec with every value ``other`` sets (differs from the defaults) taken from ``other``."""
        changed = {f.name: getattr(other, f.name) for f in fields(CameraSpec)
                   if getattr(other, f.name) != f.default}
        return CameraSpec(**{**self.__dict__, **changed})

    def world_size(self, width: int, height: int) -> tuple[int, int]:
        """The world canvas (width, height) the window moves over: the frame plus room for every motion."""
        room_x = self.pan + 2.2 * self.shake + (1.6 if self.presets else 0.0) + (0.3 if self.follow else 0.0)
        room_y = (2.2 * self.shake + (0.15 if self.follow else 0.0)) * width / height + (0.3 if self.presets else 0.0)
        return round(width * (1 + room_x)), round(height * (1 + room_y))


class Camera:
    """A :class:`CameraSpec` at one frame size and seed: the window at any time, and filming a world frame."""

    def __init__(self, spec: CameraSpec, seed: int, width: int, height: int, fps: float, duration: float,
                 segments: list[Segment]) -> None:
        self.spec, self.seed, self.width, self.height, self.fps = spec, seed, width, height, fps
        self.world = spec.world_size(width, height)
        self._segments = segments
        self._starts = [s.start for s in segments]
        rng = np.random.default_rng([seed, 20])
        self._phase = rng.uniform(0, 2 * math.pi, 2)
        freqs = rng.uniform(1.0, 6.0, (2, 3))
        weights = 1 / freqs
        self._shake = (freqs, rng.uniform(0, 2 * math.pi, (2, 3)), weights / weights.sum(axis=1, keepdims=True))
        self._presets = self._draw_presets(np.random.default_rng([seed, 21]))
        self._events = self._draw_exposure_events(np.random.default_rng([seed, 22]), duration)

    # -- where the camera looks ---------------------------------------------------------------------------

    def window(self, t: float) -> Window:
        """The window at stream time ``t``: centre (world pixels) and world pixels per frame pixel."""
        s, w, h = self.spec, self.width, self.height
        ww, wh = self.world
        cx, cy, z = ww / 2, wh / 2, 1.0
        if s.presets:
            cx, cy, z = self._tour(t)
        if s.pan:
            cx -= s.pan * w / 2 * math.cos(2 * math.pi * t / s.pan_period + self._phase[0])
        if s.zoom:
            z /= 1 + s.zoom * (0.5 - 0.5 * math.cos(2 * math.pi * t / s.zoom_period + self._phase[1]))
        if s.follow:
            dx, dy = self._follow(t)
            cx, cy = cx + dx, cy + dy
        if s.shake:
            freqs, phases, weights = self._shake
            sway = (weights * np.sin(2 * math.pi * freqs * t + phases)).sum(axis=1)
            cx, cy = cx + s.shake * w * float(sway[0]), cy + s.shake * w * float(sway[1])
        cx = min(max(cx, z * w / 2), ww - z * w / 2)
        cy = min(max(cy, z * h / 2), wh - z * h / 2)
        return cx, cy, z

    def _draw_presets(self, rng: np.random.Generator) -> list[Window]:
        n = self.spec.presets
        ww, wh = self.world
        presets = []
        for i in range(n):
            z = float(rng.uniform(0.6, 1.0))
            half_w, half_h = z * self.width / 2, z * self.height / 2
            slot = (i + rng.uniform(0.25, 0.75)) / max(n, 1)  # spread across the world, in a shuffled order
            presets.append((half_w + slot * (ww - 2 * half_w), float(rng.uniform(half_h, wh - half_h)), z))
        order = rng.permutation(n)
        return [presets[int(k)] for k in order]

    def _tour(self, t: float) -> Window:
        s = self.spec
        leg = s.dwell + s.move
        k, into = divmod(t, leg)
        here, there = self._presets[int(k) % s.presets], self._presets[(int(k) + 1) % s.presets]
        if into <= s.dwell:
            return here
        u = 0.5 - 0.5 * math.cos(math.pi * (into - s.dwell) / s.move)  # a smooth start and stop
        return (here[0] + u * (there[0] - here[0]), here[1] + u * (there[1] - here[1]),
                here[2] + u * (there[2] - here[2]))

    def _follow(self, t: float) -> tuple[float, float]:
        """The shot's own framing and drift: an offset from the world's centre."""
        k = max(np.searchsorted(self._starts, t, side="right") - 1, 0)
        seg = self._segments[k]
        rng = np.random.default_rng([self.seed, 23, int(k)])
        room_x, room_y = (self.world[0] - self.width) / 2, (self.world[1] - self.height) / 2
        x0, y0 = rng.uniform(-0.5, 0.5) * room_x, rng.uniform(-0.5, 0.5) * room_y
        speed = self.spec.follow * self.width * rng.uniform(0.4, 1.0)
        angle = rng.uniform(-0.3, 0.3) + (math.pi if x0 > 0 else 0.0)  # mostly across, towards the middle
        dt = t - seg.start
        return x0 + speed * dt * math.cos(angle), y0 + speed * dt * math.sin(angle)

    # -- exposure ---------------------------------------------------------------------------------------

    def _draw_exposure_events(self, rng: np.random.Generator, duration: float) -> np.ndarray:
        """(N, 2) time and log-gain swing of each change of the metered light, in time order."""
        if not self.spec.exposure:
            return np.zeros((0, 2))
        times = [s.start for s in self._segments[1:] if s.start < duration]
        t = 0.0
        while True:
            t += rng.exponential(self.spec.exposure_every)
            if t >= duration:
                break
            times.append(t)
        times.sort()
        swings = np.random.default_rng([self.seed, 24]).uniform(-1, 1, len(times))
        return np.column_stack([times, swings * self.spec.exposure]) if times else np.zeros((0, 2))

    def exposure_gain(self, t: float) -> float:
        """The auto-exposure gain at ``t``: each metered change swings it, peaking after ``exposure_tau`` and
        settling back."""
        if not len(self._events):
            return 1.0
        past = self._events[self._events[:, 0] <= t]
        x = (t - past[:, 0]) / self.spec.exposure_tau
        return float(math.exp(float((past[:, 1] * x * np.exp(1 - x)).sum())))

    # -- filming --------------------------------------------------------------------------------------

    def film(self, canvas: np.ndarray, truth: np.ndarray, owner: np.ndarray,
             t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The window at ``t`` of the world buffers: (float32 image, class map, instance owners), frame-sized,
        the image blurred along the camera's motion during the shutter."""
        window = self.window(t)
        xs, ys = self._coords(window)
        image = _bilinear(canvas, xs, ys)
        near_x = np.clip(np.floor(xs + 0.5).astype(np.intp), 0, canvas.shape[1] - 1)
        near_y = np.clip(np.floor(ys + 0.5).astype(np.intp), 0, canvas.shape[0] - 1)
        grid = np.ix_(near_y, near_x)
        if self.spec.blur:
            image = self._blur(image, window, t)
        return image, truth[grid], owner[grid]

    def _coords(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        cx, cy, z = window
        xs = cx + (np.arange(self.width) + 0.5 - self.width / 2) * z - 0.5
        ys = cy + (np.arange(self.height) + 0.5 - self.height / 2) * z - 0.5
        return xs, ys

    def _blur(self, image: np.ndarray, window: Window, t: float) -> np.ndarray:
        """Average ``image`` along the path the window travelled while the shutter was open."""
        half = self.spec.blur / self.fps / 2
        (ax, ay, _), (bx, by, _) = self.window(t - half), self.window(t + half)
        vx, vy = (bx - ax) / window[2], (by - ay) / window[2]  # frame pixels moved during the shutter
        steps = min(math.ceil(math.hypot(vx, vy)), 8)
        if steps < 1:
            return image
        h, w = image.shape[:2]
        out = np.zeros_like(image)
        for j in range(steps + 1):
            f = j / steps - 0.5
            rows = np.clip(np.arange(h) + round(f * vy), 0, h - 1)
            cols = np.clip(np.arange(w) + round(f * vx), 0, w - 1)
            out += image[np.ix_(rows, cols)]
        return out / (steps + 1)

    def compress(self, image: np.ndarray) -> np.ndarray:
        """A JPEG round trip at ``jpeg`` quality (the image unchanged when off)."""
        if not self.spec.jpeg:
            return image
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(self.spec.jpeg))
        return np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _bilinear(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``canvas`` (H, W, 3) sampled at the grid ``ys`` x ``xs`` (pixel-centre coordinates), float32."""
    h, w = canvas.shape[:2]
    x0 = np.clip(np.floor(xs).astype(np.intp), 0, w - 1)
    y0 = np.clip(np.floor(ys).astype(np.intp), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx = np.clip(xs - x0, 0, 1).astype(np.float32)[None, :, None]
    fy = np.clip(ys - y0, 0, 1).astype(np.float32)[:, None, None]
    rows = canvas[y0].astype(np.float32) * (1 - fy) + canvas[y1].astype(np.float32) * fy
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx
