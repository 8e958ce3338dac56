from odist.distill.schedule import StrideLadder


def test_ladder_climbs_one_rung_per_success_and_caps():
    ladder = StrideLadder.from_strides([8, 16, 32, 64])
    assert ladder.stride == 8 and ladder.is_keyframe(0)
    strides = [ladder.after_keyframe(0, True) for _ in range(5)]
    assert strides == [16, 32, 64, 64, 64]


def test_ladder_drops_one_rung_per_failure_and_floors():
    ladder = StrideLadder((8, 16, 32, 64), rung=3)
    assert [ladder.after_keyframe(0, False) for _ in range(5)] == [32, 16, 8, 8, 8]


def test_next_keyframe_is_current_plus_new_stride():
    ladder = StrideLadder.from_strides([8, 16])
    ladder.after_keyframe(10, True)
    assert not ladder.is_keyframe(25) and ladder.is_keyframe(26)


def test_state_round_trip():
    ladder = StrideLadder((8, 16, 32), rung=2, next_keyframe=99)
    assert StrideLadder.from_state_dict(ladder.state_dict()) == ladder
