"""A moving camera on the synthetic scenes: composable options, the truth moving with the image, and the
scenarios without a camera exactly as they were."""

import hashlib

import numpy as np
import pytest

from odist.errors import InputError
from odist.video.synthetic import (
    CAMERA_OPTIONS,
    MOVING_SCENARIOS,
    SCENARIOS,
    CameraSpec,
    SyntheticSource,
    parse_synthetic_spec,
)
from odist.video.synthetic.camera import Camera
from odist.video.synthetic.timeline import Segment

W, H = 96, 64

# sha256 (first 16 hex digits) of frames 0, 37, 150 and 199 (image, truth, boxes) of each still-camera
# scenario at seed 3, 96x64, 200 frames, taken before cameras could move.
STILL_DIGESTS = {
    "static_easy": "524ff32813500806",
    "traffic": "387817a953dd33d3",
    "nonstationary": "2bc46782ee8a3d59",
    "edited": "db73861154504054",
}


def digest(scenario: str) -> str:
    source = SyntheticSource(scenario, seed=3, width=W, height=H, frames=200)
    h = hashlib.sha256()
    for i in (0, 37, 150, 199):
        frame = source.frame(i)
        for part in (frame.image, frame.truth, frame.truth_boxes):
            h.update(part.tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("scenario", sorted(STILL_DIGESTS))
def test_the_still_camera_scenarios_render_as_before(scenario):
    assert SCENARIOS[scenario].camera is None
    assert digest(scenario) == STILL_DIGESTS[scenario]


def test_moving_scenarios_are_listed_and_parse():
    assert {"ptz_tour", "handheld_edited"} <= set(MOVING_SCENARIOS) <= set(SCENARIOS)
    assert parse_synthetic_spec("synthetic:ptz_tour") == "ptz_tour"
    assert SCENARIOS["ptz_tour"].camera.presets >= 3
    assert SCENARIOS["handheld_edited"].cut_seconds is not None and SCENARIOS["handheld_edited"].camera.shake > 0


def test_camera_options_compose_after_a_plus():
    name = parse_synthetic_spec("synthetic:traffic+pan+shake+jpeg")
    camera = SyntheticSource(name, width=W, height=H, frames=4).spec.camera
    assert (camera.pan, camera.shake, camera.jpeg) == (CAMERA_OPTIONS["pan"].pan, CAMERA_OPTIONS["shake"].shake, 40)
    assert camera.zoom == 0 and camera.presets == 0
    merged = SyntheticSource("ptz_tour+shake", width=W, height=H, frames=4).spec.camera
    assert merged.presets == SCENARIOS["ptz_tour"].camera.presets and merged.shake > 0


@pytest.mark.parametrize("spec, named", [("synthetic:traffic+wobble", "wobble"), ("synthetic:nope+pan", "nope")])
def test_an_unknown_option_or_scenario_is_one_clear_error(spec, named):
    with pytest.raises(InputError) as e:
        parse_synthetic_spec(spec)
    assert named in str(e.value) and "\n" not in str(e.value)


def coded_world(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A world whose colour is its class (blocks of classes 0-3): its canvas and truth."""
    rng = np.random.default_rng(seed)
    truth = np.kron(rng.integers(0, 4, (12, 16)), np.ones((20, 24), np.int64)).astype(np.uint8)
    canvas = np.repeat((truth.astype(np.float32) * 60)[..., None], 3, axis=2)
    return canvas, truth


@pytest.mark.parametrize("spec", [CameraSpec(pan=0.6), CameraSpec(zoom=0.6), CameraSpec(shake=0.02),
                                  CameraSpec(presets=3, dwell=0.5, move=0.5), CameraSpec(follow=0.2)])
def test_the_truth_moves_with_the_image(spec):
    canvas, truth = coded_world()
    camera = Camera(spec, seed=1, width=W, height=H, fps=30.0, duration=4.0, segments=[Segment(0.0, 9.0, 0, 1.0)])
    canvas = canvas[:camera.world[1], :camera.world[0]]
    truth = truth[:camera.world[1], :camera.world[0]]
    assert canvas.shape[:2] == camera.world[::-1]
    windows = set()
    for t in np.linspace(0, 4, 9):
        image, filmed, owner = camera.film(canvas, truth, truth.astype(np.uint16), float(t))
        assert image.shape == (H, W, 3) and filmed.shape == (H, W) and np.array_equal(owner, filmed)
        seen = np.rint(image[..., 0] / 60)
        edge = np.zeros((H, W), bool)  # pixels next to another class: the image blends there
        edge[1:] |= filmed[1:] != filmed[:-1]
        edge[:-1] |= filmed[:-1] != filmed[1:]
        edge[:, 1:] |= filmed[:, 1:] != filmed[:, :-1]
        edge[:, :-1] |= filmed[:, :-1] != filmed[:, 1:]
        assert np.array_equal(seen[~edge], filmed[~edge])
        windows.add(tuple(round(v, 3) for v in camera.window(float(t))))
    assert len(windows) >= 3  # the camera moved


def test_a_ptz_tour_dwells_on_its_presets_and_pans_between_them():
    source = SyntheticSource("ptz_tour", seed=2, width=W, height=H, frames=30 * 20)
    camera = source._camera
    spec = camera.spec
    dwelling = [camera.window(k * (spec.dwell + spec.move) + spec.dwell / 2) for k in range(spec.presets)]
    assert len({tuple(np.round(w, 3)) for w in dwelling}) == spec.presets  # distinct presets
    assert camera.window(spec.dwell / 4) == camera.window(spec.dwell * 3 / 4)  # still while dwelling
    moving = [camera.window(spec.dwell + spec.move * u) for u in (0.25, 0.5, 0.75)]
    assert len(set(moving)) == 3 and source.cuts == ()


def test_handheld_shots_cut_and_shake():
    source = SyntheticSource("handheld_edited", seed=1, width=W, height=H, frames=300)
    assert source.cuts
    first = source.cuts[0]
    inside = [source._camera.window(i / source.fps) for i in range(first - 5, first)]
    assert len(set(inside)) == len(inside)  # the camera never stands still within a shot


def test_exposure_blur_and_compression_touch_the_image_only():
    plain = SyntheticSource("traffic+pan", seed=4, width=W, height=H, frames=60)
    full = SyntheticSource("traffic+pan+exposure+blur+jpeg", seed=4, width=W, height=H, frames=60)
    gains = [full._camera.exposure_gain(i / 30) for i in range(60)]
    assert min(gains) > 0 and max(gains) - min(gains) > 0.01
    for i in (10, 40):
        a, b = plain.frame(i), full.frame(i)
        assert np.array_equal(a.truth, b.truth) and np.array_equal(a.truth_boxes, b.truth_boxes)
        assert not np.array_equal(a.image, b.image)


@pytest.mark.parametrize("scenario", ["ptz_tour", "handheld_edited", "static_easy+zoom+shake"])
def test_boxes_bound_the_visible_truth_and_streams_are_prefixes(scenario):
    short, long = (SyntheticSource(scenario, seed=5, width=W, height=H, frames=n, fps=5.0) for n in (30, 50))
    for i in (0, 14, 29):
        a, b = short.frame(i), long.frame(i)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.truth, b.truth)
        covered = np.zeros((H, W), bool)
        for cls, x0, y0, x1, y1 in a.truth_boxes:
            region = a.truth[int(y0):int(y1), int(x0):int(x1)]
            assert (region == int(cls)).any()
            covered[int(y0):int(y1), int(x0):int(x1)] |= region == int(cls)
        assert np.array_equal(covered, a.truth > 0)
