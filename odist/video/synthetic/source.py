"""``SyntheticSource``: renders frames of a scenario with exact per-pixel truth and visible boxes.

The source builds its viewpoint layouts, segments and actor schedule up front from seeded generators,
then renders frame ``i`` directly: the viewpoint's cached background, the actors on screen at that time
stamped far to near from an LRU sprite cache (writing the class truth map and instance owners), then
lighting drift and a seeded sensor-noise tile. A scenario with a camera renders a larger world and films a
moving window of it (``camera``), the truth sampled with the image. It also reports cuts, viewpoints, light
gain and density.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from odist.errors import InputError
from odist.video.frame import Frame
from odist.video.synthetic.actors import Actor, schedule_path
from odist.video.synthetic.background import paint_background
from odist.video.synthetic.camera import Camera
from odist.video.synthetic.canvas import RGB, jitter
from odist.video.synthetic.layout import make_layout
from odist.video.synthetic.scenarios import CLASS_NAMES, PERSON, SPEC_PREFIX, check_scenario
from odist.video.synthetic.sprites import Sprite, build_sprite
from odist.video.synthetic.timeline import density_wave, make_segments

_SPRITE_CACHE = 512


class SyntheticSource:
    """Street scenes with exact per-pixel ground truth; ``frame(i)`` equals the ``i``-th iterated frame."""

    def __init__(self, scenario: str, *, seed: int = 0, width: int = 640, height: int = 360, frames: int = 900,
                 fps: float = 30.0) -> None:
        self.spec = check_scenario(scenario)
        _check_args(seed, width, height, frames, fps)
        self.scenario, self.seed = scenario, int(seed)
        self.width, self.height, self.num_frames, self.fps = int(width), int(height), int(frames), float(fps)
        self.class_names = CLASS_NAMES
        self.name = SPEC_PREFIX + scenario
        self.duration = self.num_frames / self.fps
        self._segments = make_segments(self.spec, self.seed, self.duration)
        self._camera = None if self.spec.camera is None else Camera(
            self.spec.camera, self.seed, self.width, self.height, self.fps, self.duration, self._segments)
        # The canvas the scene is painted on: the frame, or the world a moving camera looks at.
        self._world = (self.width, self.height) if self._camera is None else self._camera.world
        self._layouts = [make_layout(np.random.default_rng([self.seed, 1, v]), *self._world)
                         for v in range(self.spec.viewpoints)]
        self._backgrounds: dict[int, np.ndarray] = {}
        self._starts = [s.start for s in self._segments]
        self._actors = self._schedule()
        self._on = np.asarray([a.on for a in self._actors], np.float64)
        self._off = np.asarray([a.off for a in self._actors], np.float64)
        light = np.random.default_rng([self.seed, 4])
        self._light_phase = light.uniform(0, 2 * math.pi, 4)
        self._tint_period = light.uniform(0.7, 1.3, 3)
        grade = np.random.default_rng([self.seed, 11])
        g = self.spec.view_grade
        self._grades = grade.uniform(1 - g, 1 + g, (self.spec.viewpoints, 3)).astype(np.float32) if g else None
        # Sensor noise: one seeded tile, read at a per-frame offset; the 0.5 rounds on conversion to uint8.
        noise = np.random.default_rng([self.seed, 5]).standard_normal((height + 37, width + 37, 3), np.float32)
        self._noise = noise * np.float32(self.spec.noise_sigma) + np.float32(0.5)
        self._texture = np.random.default_rng([self.seed, 8]).normal(0, 1, (97, 89)).astype(np.float32)
        self._sprites: OrderedDict[tuple, Sprite] = OrderedDict()

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
        """The (3,) RGB gain that lighting drift (and the viewpoint's colour grade) applies to frame ``index``."""
        t = index / self.fps
        spec, ph = self.spec, self._light_phase
        gain = 1 + spec.light_swing * math.sin(2 * math.pi * t / spec.light_period + ph[0])
        tint = 1 + spec.tint_swing * np.sin(2 * math.pi * t / (spec.light_period * self._tint_period) + ph[1:])
        if self._grades is not None:
            tint = tint * self._grades[self.viewpoint_at(index)]
        return (gain * tint).astype(np.float32)

    def density_at(self, index: int) -> float:
        """The arrival-rate multiplier at frame ``index``: the density wave times the segment's factor."""
        return density_wave(self.spec, self.seed, index / self.fps) * self._segments[self._segment_at(index)].density

    def frame(self, index: int) -> Frame:
        """Render frame ``index`` (0-based) with its truth map and visible-instance boxes."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} is outside 0..{self.num_frames - 1}")
        t = index / self.fps
        view = self.viewpoint_at(index)
        canvas = self._background(view).copy()
        world_w, world_h = self._world
        truth = np.zeros((world_h, world_w), np.uint8)
        owner = np.zeros((world_h, world_w), np.uint16)
        stamped = []
        for k, (actor, u) in enumerate(self._placements(t), start=1):
            window = self._stamp(canvas, truth, owner, actor, u, k, view)
            if window is not None:
                stamped.append((actor.cls, window, k))
        if self._camera is None:
            image = self._expose(canvas, index)
            return Frame(index, image, timestamp=t, truth=truth, truth_boxes=_visible_boxes(owner, stamped))
        filmed, truth, owner = self._camera.film(canvas, truth, owner, t)
        image = self._camera.compress(self._expose(filmed, index, self._camera.exposure_gain(t)))
        full = (slice(0, self.height), slice(0, self.width))
        return Frame(index, image, timestamp=t, truth=truth,
                     truth_boxes=_visible_boxes(owner, [(cls, full, k) for cls, _, k in stamped]))

    def _segment_at(self, index: int) -> int:
        return bisect_right(self._starts, index / self.fps) - 1

    def _background(self, view: int) -> np.ndarray:
        if view not in self._backgrounds:
            rng = np.random.default_rng([self.seed, 2, view])
            self._backgrounds[view] = paint_background(self._layouts[view], rng)
        return self._backgrounds[view]

    def _schedule(self) -> list[Actor]:
        actors: list[Actor] = []
        for s, seg in enumerate(self._segments):
            for p, path in enumerate(self._layouts[seg.viewpoint].paths):
                for cls in path.classes:
                    actors += schedule_path(self.spec, self.seed, self._segments, s, p, path, cls, self.duration)
        return actors

    def _placements(self, t: float) -> list[tuple[Actor, float]]:
        """Actors on their path at ``t`` with the fraction covered, far (small y) first."""
        found = []
        for i in np.flatnonzero((self._on <= t) & (t < self._off)):
            actor = self._actors[i]
            u = actor.progress(t)
            if 0.0 <= u <= 1.0:
                found.append((actor.path.point(u)[1], actor.key, actor, u))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(actor, u) for _, _, actor, u in found]

    def _stamp(self, canvas: np.ndarray, truth: np.ndarray, owner: np.ndarray, actor: Actor, u: float, k: int,
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
        y1, x1 = min(top + h, self._world[1]), min(left + sprite.mask.shape[1], self._world[0])
        if y0 >= y1 or x0 >= x1:
            return None
        window = (slice(y0, y1), slice(x0, x1))
        crop = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
        mask = sprite.mask[crop]
        np.copyto(canvas[window], sprite.rgb[crop], where=mask[..., None])
        np.copyto(truth[window], actor.cls, where=mask)
        np.copyto(owner[window], k, where=mask)
        return window

    def _sprite(self, actor: Actor, h: int, swing: float, view: int) -> Sprite:
        key = (actor.key, h, swing)
        sprite = self._sprites.get(key)
        if sprite is None:
            main = self._camouflage(actor, view) if actor.look.camouflage else actor.look.main
            sprite = build_sprite(actor, h, swing, main, self._texture)
            self._sprites[key] = sprite
            if len(self._sprites) > _SPRITE_CACHE:
                self._sprites.popitem(last=False)
        else:
            self._sprites.move_to_end(key)
        return sprite

    def _camouflage(self, actor: Actor, view: int) -> RGB:
        """The background's mean colour where the actor crosses the middle of the image, slightly jittered."""
        layout = self._layouts[view]
        x, y = actor.path.point(0.5)
        h = actor.height_m * layout.ppm(y)
        width, height = self._world
        y0, y1 = int(np.clip(y - h, 0, height - 1)), int(np.clip(y, 1, height))
        x0, x1 = int(np.clip(x - h / 2, 0, width - 1)), int(np.clip(x + h / 2, 1, width))
        patch = self._background(view)[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
        rng = np.random.default_rng([self.seed, 10, *actor.key])
        return jitter(rng, patch.reshape(-1, 3).mean(axis=0), 14)

    def _expose(self, canvas: np.ndarray, index: int, exposure: float = 1.0) -> np.ndarray:
        """Apply lighting drift (times the camera's ``exposure`` gain) and sensor noise."""
        out = canvas.astype(np.float32)
        flat = out.reshape(self.height, self.width * 3)  # a long inner axis multiplies much faster than (..., 3)
        gain = self.light_gain(index) if exposure == 1.0 else self.light_gain(index) * np.float32(exposure)
        np.multiply(flat, np.tile(gain, self.width), out=flat)
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
