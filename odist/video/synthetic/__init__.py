"""Synthetic street scenes with exact per-pixel ground truth.

A fixed camera looks across a street: sky, buildings, trees and lamp posts at the back, a far
sidewalk, a road with lanes, a near sidewalk and a plaza in front. People, vehicles and bikes
travel along paths at a steady speed with mild variation, enter and leave the frame, shrink with
distance and occlude each other by depth. Scenarios add lighting drift, density waves, scene cuts
between viewpoints and classes that only appear partway through the stream, and a camera that moves and
exposes like a real one (pans, zooms, handheld shake, PTZ tours, auto exposure, motion blur, compression):
the ``ptz_tour`` and ``handheld_edited`` scenarios, or any scenario with ``+OPTION`` camera options.

Every frame is a pure function of ``(seed, index)``: cut times and each path's arrivals are drawn
in time order from their own seeded generators, so ``source.frame(i)`` renders frame ``i``
directly, and a shorter stream is a prefix of a longer one with the same seed.

The package is split by job: ``scenarios`` (class ids, specs, spec parsing), ``canvas`` (drawing
primitives and noise), ``layout`` (street geometry and paths), ``background`` (painting a viewpoint),
``timeline`` (scene cuts and the density wave), ``actors`` (arrivals, looks and motion), ``sprites``
(drawing an actor), ``camera`` (the moving window and its exposure) and ``source`` (``SyntheticSource``,
which renders frames).
"""

from odist.video.synthetic.camera import CameraSpec
from odist.video.synthetic.canvas import RGB
from odist.video.synthetic.scenarios import (
    BACKGROUND,
    BIKE,
    CAMERA_OPTIONS,
    CAMERA_SCENARIOS,
    CLASS_NAMES,
    MOVING_SCENARIOS,
    PERSON,
    SCENARIOS,
    SPEC_PREFIX,
    VEHICLE,
    ScenarioSpec,
    is_synthetic_spec,
    parse_synthetic_spec,
)
from odist.video.synthetic.source import SyntheticSource

__all__ = [
    "BACKGROUND",
    "BIKE",
    "CAMERA_OPTIONS",
    "CAMERA_SCENARIOS",
    "CLASS_NAMES",
    "MOVING_SCENARIOS",
    "PERSON",
    "RGB",
    "SCENARIOS",
    "SPEC_PREFIX",
    "VEHICLE",
    "CameraSpec",
    "ScenarioSpec",
    "SyntheticSource",
    "is_synthetic_spec",
    "parse_synthetic_spec",
]
