"""Actors: who appears on each path, when, how they look and how far along their path they are.

``schedule_path`` draws the arrivals of one class on one path within one segment as a thinned Poisson
process in time order, from a generator seeded by ``(seed, segment, path, class)``; each arrival becomes
an :class:`Actor` with a size variant, a :class:`Look` (colours, accessory, camouflage), a base speed and
a smooth speed wobble, so ``Actor.progress(t)`` gives its position along the path at any time directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from odist.video.synthetic.canvas import RGB, hsv, jitter
from odist.video.synthetic.layout import Path
from odist.video.synthetic.scenarios import BIKE, PERSON, VEHICLE, ScenarioSpec
from odist.video.synthetic.timeline import Segment, density_wave

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


@dataclass(frozen=True)
class Look:
    """An instance's colours and variant; ``camouflage`` swaps ``main`` for the background's colour."""

    variant: int
    main: RGB
    second: RGB
    third: RGB
    fourth: RGB
    accessory: bool
    camouflage: bool


@dataclass(frozen=True)
class Actor:
    key: tuple[int, int, int, int]  # (segment, path, class, arrival number)
    cls: int
    path: Path
    t0: float  # seconds: the foot point is at the path's start
    on: float  # seconds during which it may be visible: [on, off)
    off: float
    duration: float  # seconds to traverse the path at the base speed
    wobble: tuple[float, float, float]  # speed variation amplitude, angular frequency, phase
    height_m: float
    length_m: float
    look: Look

    def progress(self, t: float) -> float:
        """Fraction of the path covered at time ``t``; the speed factor is ``1 + a cos(w tau + phi)``."""
        a, omega, phi = self.wobble
        tau = t - self.t0
        return (tau + a / omega * (math.sin(omega * tau + phi) - math.sin(phi))) / self.duration


def _speed(rng: np.random.Generator, cls: int, path: Path) -> float:
    if cls == VEHICLE:
        return path.lane_speed * rng.uniform(0.95, 1.05)
    if cls == BIKE:
        return rng.uniform(3.5, 6.0) if path.lane_speed else rng.uniform(2.5, 4.5)
    return rng.uniform(1.0, 1.7)


def _mean_speed(cls: int, path: Path) -> float:
    return {VEHICLE: path.lane_speed, BIKE: 4.75 if path.lane_speed else 3.5, PERSON: 1.35}[cls]


def _random_look(rng: np.random.Generator, cls: int, camouflage: float) -> Look:
    probs = np.asarray([v[2] for v in _VARIANTS[cls]])
    variant = int(rng.choice(len(probs), p=probs / probs.sum()))
    if cls == PERSON:
        main = hsv(rng, (0.05, 0.8), (0.15, 0.95))
        second = jitter(rng, [(40, 50, 90), (50, 50, 55), (170, 150, 110), (25, 25, 30)][int(rng.integers(4))], 25)
        third = jitter(rng, _SKIN[int(rng.integers(len(_SKIN)))], 10)
        fourth = jitter(rng, _HAIR[int(rng.integers(len(_HAIR)))], 10)
    elif cls == VEHICLE:
        main = (hsv(rng, (0.3, 0.9), (0.3, 0.9)) if rng.random() < 0.25
                else jitter(rng, _VEHICLE_PALETTE[int(rng.integers(len(_VEHICLE_PALETTE)))], 12))
        second = jitter(rng, (45, 55, 65), 20) if rng.random() < 0.7 else jitter(rng, (120, 140, 160), 20)
        third, fourth = jitter(rng, (35, 35, 38), 8), jitter(rng, (150, 150, 150), 30)
    else:
        main = hsv(rng, (0.4, 1.0), (0.3, 0.95))
        second, third, fourth = jitter(rng, (30, 30, 32), 6), jitter(rng, (120, 120, 125), 25), (40.0, 35.0, 30.0)
    return Look(variant, main, second, third, fourth, bool(rng.random() < 0.3), bool(rng.random() < camouflage))


def schedule_path(spec: ScenarioSpec, seed: int, segments: list[Segment], s: int, p: int, path: Path,
                  cls: int, duration: float) -> list[Actor]:
    """The arrivals of one class on one path in one segment, drawn in time order (a thinned Poisson process)."""
    onset = spec.onset(cls)
    count = spec.count(cls)
    seg = segments[s]
    if onset is None or count <= 0 or seg.density <= 0:
        return []
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
        accept = rng.random() * peak <= base * seg.density * density_wave(spec, seed, t)
        actor = _make_actor(rng, (s, p, cls, len(actors)), cls, path, t, seg, spec)
        gap = 1.6 * actor.length_m * actor.duration / path.length_m  # seconds to move 1.6 body lengths
        if accept and t >= onset_cut and t - last >= gap:
            actors.append(actor)
            last = t


def _make_actor(rng: np.random.Generator, key: tuple[int, int, int, int], cls: int, path: Path, t0: float,
                seg: Segment, spec: ScenarioSpec) -> Actor:
    look = _random_look(rng, cls, spec.camouflage)
    height_m, length_m, _ = _VARIANTS[cls][look.variant]
    size = rng.uniform(0.9, 1.1)
    duration = path.length_m / _speed(rng, cls, path)
    a = spec.speed_jitter * rng.uniform(0.5, 1.0)
    wobble = (a, 2 * math.pi / rng.uniform(3.0, 9.0), rng.uniform(0, 2 * math.pi))
    off = min(t0 + duration / max(1 - a, 0.05) + 1e-6, seg.end)
    return Actor(key, cls, path, t0, max(t0, seg.start), off, duration, wobble, height_m * size, length_m * size, look)
