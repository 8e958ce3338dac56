"""The stream's timeline: scene-cut segments and the slow density wave.

``make_segments`` splits stream time into :class:`Segment` s, each showing one viewpoint with its own
log-uniform density factor (0 for the scenario's share of empty shots), drawing cut times in order from
their own seeded generator so that a shorter stream is a prefix of a longer one; ``density_wave`` is the
sinusoidal arrival-rate multiplier shared by every path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from odist.video.synthetic.scenarios import ScenarioSpec


@dataclass(frozen=True)
class Segment:
    start: float
    end: float  # may lie past the end of the stream
    viewpoint: int
    density: float  # 0: an empty shot


def make_segments(spec: ScenarioSpec, seed: int, duration: float) -> list[Segment]:
    rng = np.random.default_rng([seed, 7])
    lo, hi = np.log(spec.segment_density)
    empty = np.random.default_rng([seed, 12])  # its own stream, so scenarios without empty shots are unchanged
    segments: list[Segment] = []
    start, view = 0.0, int(rng.integers(spec.viewpoints))
    while True:
        length = rng.uniform(*spec.cut_seconds) if spec.cut_seconds else math.inf
        density = float(np.exp(rng.uniform(lo, hi)))
        if spec.empty_shots > 0 and empty.random() < spec.empty_shots:
            density = 0.0
        segments.append(Segment(start, start + length, view, density))
        start += length
        if start >= duration:
            return segments
        if spec.viewpoints > 1:
            view = (view + 1 + int(rng.integers(spec.viewpoints - 1))) % spec.viewpoints


def density_wave(spec: ScenarioSpec, seed: int, t: float) -> float:
    """The slow density wave shared by every path: ``1 + swing * sin(2 pi t / period + phase)``."""
    phase = 2 * math.pi * np.random.default_rng([seed, 9]).random()
    return max(0.0, 1 + spec.density_swing * math.sin(2 * math.pi * t / spec.density_period + phase))
