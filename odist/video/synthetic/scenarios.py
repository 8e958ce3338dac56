"""Scenario specs: the named scenarios, their knobs, and parsing of ``synthetic:NAME`` specs.

This module fixes the class ids (``BACKGROUND``, ``PERSON``, ``VEHICLE``, ``BIKE``) every other part of
the package draws and labels with, defines :class:`ScenarioSpec` (densities, lighting drift, scene cuts,
late-appearing classes, noise, camouflage and the camera's behaviour) and the :data:`SCENARIOS` table, the
camera options (:data:`CAMERA_OPTIONS`) a scenario name may add after ``+`` (``traffic+pan+shake``), and turns
a source spec such as ``"synthetic:traffic+zoom"`` into a validated scenario name, raising :class:`InputError`
otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from odist.config import DEFAULT_CLASSES
from odist.errors import InputError
from odist.video.synthetic.camera import CameraSpec

CLASS_NAMES: tuple[str, ...] = DEFAULT_CLASSES
BACKGROUND, PERSON, VEHICLE, BIKE = 0, 1, 2, 3
SPEC_PREFIX = "synthetic:"


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
    # Fraction of shots (segments) that show no objects at all, and the strength of each viewpoint's own
    # colour grade (a per-channel gain drawn in [1 - grade, 1 + grade]), as in edited footage.
    empty_shots: float = 0.0
    view_grade: float = 0.0
    # How the camera moves and exposes (None: a still camera, the frame is the scene as painted).
    camera: CameraSpec | None = None

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
    "edited": ScenarioSpec(
        description="edited footage: shots of 1-3 s from six viewpoints, each with its own colour grade; a "
                    "quarter of the shots show nobody, and people and bikes are on screen right after a cut",
        viewpoints=6, cut_seconds=(1.0, 3.0), empty_shots=0.25, view_grade=0.2,
        people=1.5, vehicles=1.0, bikes=0.6, segment_density=(0.6, 2.0),
        light_swing=0.1, light_period=30.0, tint_swing=0.04, noise_sigma=2.5, camouflage=0.2, speed_jitter=0.15,
    ),
    "ptz_tour": ScenarioSpec(
        description="a PTZ camera touring four presets of one street (position and zoom), 5 s at each and a "
                    "1 s fast pan between them; auto exposure, motion blur and compression",
        people=1.5, vehicles=1.2, bikes=0.5, density_period=40.0, density_swing=0.5,
        light_swing=0.1, light_period=40.0, tint_swing=0.03, noise_sigma=2.5, camouflage=0.2,
        camera=CameraSpec(presets=4, dwell=5.0, move=1.0, exposure=0.25, blur=0.5, jpeg=40),
    ),
    "handheld_edited": ScenarioSpec(
        description="edited footage filmed handheld: shots of 1-3 s from six viewpoints, each framed on its "
                    "own and drifting with the action, the camera shaking; hard cuts between shots, auto "
                    "exposure, motion blur and compression",
        viewpoints=6, cut_seconds=(1.0, 3.0), empty_shots=0.25, view_grade=0.2,
        people=1.5, vehicles=1.0, bikes=0.6, segment_density=(0.6, 2.0),
        light_swing=0.1, light_period=30.0, tint_swing=0.04, noise_sigma=2.5, camouflage=0.2, speed_jitter=0.15,
        camera=CameraSpec(shake=0.012, follow=0.12, exposure=0.25, blur=0.5, jpeg=40),
    ),
}

# Camera options a scenario name adds after "+", composable: "traffic+pan+shake+blur".
CAMERA_OPTIONS: dict[str, CameraSpec] = {
    "pan": CameraSpec(pan=0.6, pan_period=8.0),  # sweeps 0.6 frame widths and back every 8 s
    "zoom": CameraSpec(zoom=0.6, zoom_period=10.0),  # zooms in to 1/1.6 of the view and out every 10 s
    "shake": CameraSpec(shake=0.012),  # handheld: sways of 1-6 Hz, up to 1.2 % of the width
    "follow": CameraSpec(follow=0.12),  # each shot drifts up to 0.12 widths a second from its own framing
    "ptz": CameraSpec(presets=4, dwell=5.0, move=1.0),  # a tour of four presets
    "exposure": CameraSpec(exposure=0.25),  # auto exposure swings of up to e^0.25 every ~3 s and at cuts
    "blur": CameraSpec(blur=0.5),  # a half-open shutter
    "jpeg": CameraSpec(jpeg=40),  # compression at JPEG quality 40
}


# The scenarios of a fixed camera (``edited`` is cut footage, not a camera): what ``odist synth`` writes by default.
CAMERA_SCENARIOS: tuple[str, ...] = ("static_easy", "traffic", "nonstationary")
# The scenarios whose camera moves (before any "+" option).
MOVING_SCENARIOS: tuple[str, ...] = tuple(name for name, spec in SCENARIOS.items() if spec.camera is not None)


def is_synthetic_spec(spec: str) -> bool:
    return spec.startswith(SPEC_PREFIX)


def parse_synthetic_spec(spec: str) -> str:
    """``"synthetic:traffic"`` -> ``"traffic"``; InputError for anything else or an unknown scenario."""
    if not is_synthetic_spec(spec):
        raise InputError(f"{spec!r} is not a synthetic source", f"write {SPEC_PREFIX}NAME")
    name = spec[len(SPEC_PREFIX):]
    check_scenario(name)
    return name


def check_scenario(name: str) -> ScenarioSpec:
    """The spec of ``name``: a scenario, optionally followed by camera options (``traffic+pan+shake``)."""
    base, *options = name.split("+")
    if base not in SCENARIOS:
        choices = ", ".join(SPEC_PREFIX + n for n in SCENARIOS)
        raise InputError(f"unknown synthetic scenario {base!r}",
                         f"choose one of: {choices} (optionally with +OPTION: {', '.join(CAMERA_OPTIONS)})")
    spec = SCENARIOS[base]
    for option in options:
        if option not in CAMERA_OPTIONS:
            raise InputError(f"unknown camera option {option!r} in synthetic scenario {name!r}",
                             f"write NAME+OPTION+... with options among: {', '.join(CAMERA_OPTIONS)}")
        camera = CAMERA_OPTIONS[option] if spec.camera is None else spec.camera.merged(CAMERA_OPTIONS[option])
        spec = dataclasses.replace(spec, camera=camera)
    return spec
