from itertools import pairwise

import numpy as np
import pytest

from odist.errors import InputError
from odist.video.synthetic import (
    BIKE,
    PERSON,
    SCENARIOS,
    VEHICLE,
    ScenarioSpec,
    SyntheticSource,
    parse_synthetic_spec,
)

W, H = 160, 96


def small(scenario: str, **kwargs) -> SyntheticSource:
    kwargs = {"width": W, "height": H, "frames": 30, **kwargs}
    return SyntheticSource(scenario, **kwargs)


def same_frame(a, b) -> bool:
    return (a.index == b.index and a.timestamp == b.timestamp and np.array_equal(a.image, b.image)
            and np.array_equal(a.truth, b.truth) and np.array_equal(a.truth_boxes, b.truth_boxes))


def background_mean(frame) -> float:
    return float(frame.image[frame.truth == 0].mean())


def test_scenarios_are_specs_with_at_least_three_names():
    assert {"static_easy", "traffic", "nonstationary"} <= set(SCENARIOS)
    assert all(isinstance(spec, ScenarioSpec) for spec in SCENARIOS.values())


def test_frame_fields_and_attributes():
    src = small("traffic", fps=15.0)
    assert (src.width, src.height, src.fps, src.num_frames, len(src)) == (W, H, 15.0, 30, 30)
    assert src.name == "synthetic:traffic"
    assert src.class_names == ("background", "person", "vehicle", "bike")
    frame = src.frame(7)
    assert frame.index == 7 and frame.timestamp == pytest.approx(7 / 15)
    assert frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
    assert frame.truth.shape == (H, W) and frame.truth.dtype == np.uint8
    assert frame.truth_boxes.dtype == np.float32 and frame.truth_boxes.shape[1] == 5
    with pytest.raises(IndexError):
        src.frame(30)


def test_same_seed_same_frames_other_seed_differs():
    a, b, c = small("traffic", seed=3), small("traffic", seed=3), small("traffic", seed=4)
    for i in (0, 13, 29):
        assert same_frame(a.frame(i), b.frame(i))
    assert not np.array_equal(a.frame(13).image, c.frame(13).image)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_random_access_equals_iteration(scenario):
    iterated = list(small(scenario, frames=24))
    assert [f.index for f in iterated] == list(range(24))
    fresh = small(scenario, frames=24)
    for i in (23, 5, 17, 0, 11):
        assert same_frame(fresh.frame(i), iterated[i])


def test_shorter_stream_is_a_prefix_of_a_longer_one():
    short, long = small("nonstationary", frames=40, fps=3.0), small("nonstationary", frames=90, fps=3.0)
    for i in (0, 20, 39):
        assert same_frame(short.frame(i), long.frame(i))


def test_truth_and_boxes_agree():
    src = small("traffic", frames=60, fps=2.0)
    seen = set()
    for frame in (src.frame(i) for i in range(0, 60, 3)):
        covered = np.zeros((H, W), bool)
        for cls, x0, y0, x1, y1 in frame.truth_boxes:
            c, x0, y0, x1, y1 = int(cls), int(x0), int(y0), int(x1), int(y1)
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            region = frame.truth[y0:y1, x0:x1]
            # A tight box around visible pixels touches its class on all four sides.
            assert (region[0] == c).any() and (region[-1] == c).any()
            assert (region[:, 0] == c).any() and (region[:, -1] == c).any()
            covered[y0:y1, x0:x1] |= region == c
            seen.add(c)
        assert np.array_equal(covered, frame.truth > 0)
        assert set(np.unique(frame.truth)) <= {0, PERSON, VEHICLE, BIKE}
    assert seen == {PERSON, VEHICLE, BIKE}


def test_objects_enter_and_leave_and_shrink_with_distance():
    src = small("traffic", frames=120, fps=4.0)
    boxes = np.concatenate([src.frame(i).truth_boxes for i in range(0, 120, 2)])
    assert ((boxes[:, 1] == 0) | (boxes[:, 3] == W)).any()  # clipped at the left/right edge
    people = boxes[(boxes[:, 0] == PERSON) & (boxes[:, 1] > 0) & (boxes[:, 3] < W) & (boxes[:, 4] < H)]
    heights, feet = people[:, 4] - people[:, 2], people[:, 4]
    assert len(people) > 20 and np.corrcoef(feet, heights)[0, 1] > 0.8


def test_nearer_objects_are_drawn_over_farther_ones():
    # White-box: the drawing order is by foot row (nearer = lower in the image = later), so the truth
    # map holds the top-most object's class.
    src = small("nonstationary", frames=300)
    for i in range(0, 300, 20):
        feet = [actor.path.point(u)[1] for actor, u in src._placements(i / src.fps)]
        assert len(feet) > 2 and feet == sorted(feet)


def test_static_easy_has_people_only_and_steady_light():
    src = small("static_easy", frames=60, fps=1.0)
    frames = [src.frame(i) for i in range(0, 60, 4)]
    classes = set(np.unique(np.concatenate([f.truth.ravel() for f in frames])))
    assert classes == {0, PERSON}
    assert src.cuts == ()
    means = [background_mean(f) for f in frames]
    assert max(means) / min(means) < 1.08


def test_traffic_lighting_drifts_and_object_counts_follow_density():
    src = small("traffic", frames=80, fps=1.0)
    frames = [src.frame(i) for i in range(80)]
    means = [background_mean(f) for f in frames]
    assert max(means) / min(means) > 1.15
    assert max(abs(a - b) for a, b in pairwise(means)) < 6  # drift is gradual
    density = np.array([src.density_at(i) for i in range(80)])
    counts = np.array([len(f.truth_boxes) for f in frames])
    assert density.max() > 1.5 and density.min() < 0.5
    assert counts[density > 1.3].mean() > 1.5 * counts[density < 0.7].mean()
    assert np.corrcoef(density, counts)[0, 1] > 0.5
    assert src.cuts == ()


def test_nonstationary_cuts_change_the_background_abruptly():
    src = small("nonstationary", frames=300)
    assert src.cuts and src.cuts[0] > 2
    cut = src.cuts[0]
    before, last, after = src.frame(cut - 2), src.frame(cut - 1), src.frame(cut)
    assert src.viewpoint_at(cut - 1) != src.viewpoint_at(cut)

    def bg_diff(a, b) -> float:
        both = (a.truth == 0) & (b.truth == 0)
        return float(np.abs(a.image.astype(int) - b.image)[both].mean())

    assert bg_diff(last, after) > 5 * bg_diff(before, last) and bg_diff(last, after) > 15


def test_nonstationary_bikes_appear_only_later():
    src = small("nonstationary", frames=60, fps=2.0)  # 30 s; bikes may appear from 10 s
    early = [src.frame(i) for i in range(0, 20)]
    late = [src.frame(i) for i in range(20, 60)]
    assert not any((f.truth == BIKE).any() for f in early)
    assert sum((f.truth == BIKE).any() for f in late) >= 5
    assert all(set(np.unique(f.truth)) <= {0, PERSON, VEHICLE} for f in early)


def test_instances_vary_in_colour():
    src = small("traffic", frames=60, fps=2.0)
    colours = []
    for frame in (src.frame(i) for i in range(0, 60, 5)):
        for cls, x0, y0, x1, y1 in frame.truth_boxes:
            patch = frame.truth[int(y0):int(y1), int(x0):int(x1)] == cls
            if cls == VEHICLE and patch.sum() > 40:
                colours.append(frame.image[int(y0):int(y1), int(x0):int(x1)][patch].mean(axis=0))
    assert len(colours) >= 5 and np.std(colours, axis=0).max() > 20


def test_invalid_inputs_raise_input_error():
    with pytest.raises(InputError, match="synthetic:traffic"):
        SyntheticSource("rush_hour")
    for kwargs in ({"width": 0}, {"height": 10}, {"width": 100.5}, {"frames": 0}, {"fps": 0.0}, {"seed": -1}):
        with pytest.raises(InputError):
            small("traffic", **kwargs)
    assert parse_synthetic_spec("synthetic:traffic") == "traffic"
    with pytest.raises(InputError, match="static_easy"):
        parse_synthetic_spec("synthetic:nope")
    with pytest.raises(InputError):
        parse_synthetic_spec("clip.mp4")
