import json

import pytest

from odist.config import PAPER_KEYFRAME_POLICY, OdistConfig, config_from_dict, load_config, with_overrides
from odist.errors import ConfigError


def test_defaults_are_the_papers():
    c = load_config(environ={})
    assert (c.distill.max_updates, c.distill.accuracy_threshold, c.distill.lr) == (8, 0.8, 0.01)
    assert (c.distill.momentum, c.distill.weight_decay, c.distill.foreground_weight) == (0.9, 4e-5, 10.0)


def test_the_papers_keyframe_loop_is_one_set_of_overrides_away():
    default = load_config(environ={}).distill
    assert default.strides == (8, 16, 32, 64)
    assert default.cut_threshold > 0 and default.confidence_drop > 0 and default.empty_keyframes == "hold"
    paper = load_config(overrides=list(PAPER_KEYFRAME_POLICY), environ={}).distill
    assert paper.strides == (8, 16, 32, 64)
    assert (paper.cut_threshold, paper.confidence_drop, paper.empty_keyframes, paper.view_bank_size) == (
        0, 0, "climb", 0)


def test_precedence_file_then_env_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("distill:\n  max_updates: 2\n  lr: 0.1\nstudent: {width: 0.5}\n")
    c = load_config(path, ["distill.lr=0.2"], environ={"ODIST__DISTILL__MAX_UPDATES": "3", "ODIST__DISTILL__LR": "9"})
    assert (c.distill.max_updates, c.distill.lr, c.student.width) == (3, 0.2, 0.5)


def test_lists_parse_from_overrides():
    c = load_config(overrides=["distill.strides=[4,8]", "classes=background,person"], environ={})
    assert c.distill.strides == (4, 8) and c.classes == ("background", "person")


def test_round_trips_through_plain_data():
    c = OdistConfig()
    assert config_from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize("override, key", [
    ("distill.lr=-1", "distill.lr"),
    ("distill.strides=[16,8]", "distill.strides"),
    ("distill.max_updates=1.5", "distill.max_updates"),
    ("distill.min_class_fraction=1.5", "distill.min_class_fraction"),
    ("distill.iou_loss_weight=-0.5", "distill.iou_loss_weight"),
    ("distill.nope=1", "distill.nope"),
    ("student.width=wide", "student.width"),
    ("student.running_stats_momentum=0", "student.running_stats_momentum"),
    ("student.running_stats_momentum=1.5", "student.running_stats_momentum"),
    ("classes=[person,car]", "classes"),
    ("teacher.class_groups={\"dog\":[\"dog\"]}", "teacher.class_groups"),
    ("source.width=0", "source.width"),
    ("source.fps=-1", "source.fps"),
    ("source.frames=0", "source.frames"),
    ("distill.max_frames=0", "distill.max_frames"),
    ("storage.segment_frames=0", "storage.segment_frames"),
    ("fleet.warm_start=warm", "fleet.warm_start"),
    ("pool.max_batch_size=0", "pool.max_batch_size"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=[override], environ={})


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_config(bad, environ={})


def test_with_overrides_applies_validates_and_lets_groups_follow_classes():
    from odist.config import with_overrides

    base = OdistConfig()
    assert with_overrides(base, []) is base
    narrowed = with_overrides(base, ["classes=background,person", "distill.max_updates=2"])
    assert narrowed.teacher.class_groups == {"person": ["person"]} and narrowed.distill.max_updates == 2
    with pytest.raises(ConfigError, match=r"distill\.lr"):
        with_overrides(base, ["distill.lr=-1"])


def test_performance_switches_default_to_channels_last_only_and_parse_from_every_source():
    p = load_config(environ={}).performance
    assert (p.amp, p.teacher_amp, p.channels_last, p.pinned_uploads, p.compile) == ("off", "off", True, False, False)
    assert p.gpu_memory_fraction is None
    c = load_config(overrides=["performance.amp=bf16", "performance.channels_last=false", "performance.compile=yes"],
                    environ={"ODIST__PERFORMANCE__GPU_MEMORY_FRACTION": "0.25",
                             "ODIST__PERFORMANCE__TEACHER_AMP": "fp16"})
    p = c.performance
    assert (p.amp, p.teacher_amp, p.channels_last, p.compile, p.gpu_memory_fraction) == ("bf16", "fp16", False, True,
                                                                                          0.25)
    assert load_config(overrides=["performance.gpu_memory_fraction=null"], environ={}).performance.gpu_memory_fraction \
        is None
    assert config_from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert config_from_dict({"distill": {"max_updates": 2}}).performance == OdistConfig().performance  # older runs


@pytest.mark.parametrize("override, key", [
    ("performance.amp=fp8", "performance.amp"),
    ("performance.amp=true", "performance.amp"),
    ("performance.teacher_amp=half", "performance.teacher_amp"),
    ("performance.channels_last=maybe", "performance.channels_last"),
    ("performance.pinned_uploads=2", "performance.pinned_uploads"),
    ("performance.compile=[]", "performance.compile"),
    ("performance.gpu_memory_fraction=0", "performance.gpu_memory_fraction"),
    ("performance.gpu_memory_fraction=1.5", "performance.gpu_memory_fraction"),
    ("performance.gpu_memory_fraction=lots", "performance.gpu_memory_fraction"),
    ("performance.gpu_memory_fraction=true", "performance.gpu_memory_fraction"),
    ("performance.turbo=true", "performance.turbo"),
])
def test_bad_performance_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=[override], environ={})


@pytest.mark.parametrize(("override", "expected"), [
    ("distill.lr=fast", "expected a number"), ("distill.max_updates=2.5", "expected a whole number"),
    ("distill.overlap_labels=maybe", "expected true or false")])
def test_type_errors_name_the_type_in_words_not_a_python_repr(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[override], environ={})
    assert expected in str(info.value) and "<class" not in str(info.value)


def test_an_unparsable_config_is_one_line_naming_where(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("distill:\n  max_updates: [1,\n  x: 2\n")
    with pytest.raises(ConfigError, match=r"cannot be parsed: .* at line \d+, column \d+") as yaml_error:
        load_config(bad, environ={})
    broken = tmp_path / "bad.json"
    broken.write_text('{"distill": {"max_updates": 4,}}')
    with pytest.raises(ConfigError, match=r"cannot be parsed: .* at line 1, column \d+") as json_error:
        load_config(broken, environ={})
    assert "\n" not in str(yaml_error.value) + str(json_error.value)
    assert "<unicode string>" not in str(yaml_error.value)


def test_a_bad_value_error_records_the_key_it_names():
    with pytest.raises(ConfigError) as refused:
        load_config(overrides=["pool.max_batch_size=0"], environ={})
    assert str(refused.value).startswith("invalid config value for pool.max_batch_size")
    assert refused.value.keys == ("pool.max_batch_size",)


def test_live_size_and_rate_written_by_earlier_versions_are_read_as_the_source_section():
    old = config_from_dict({"live": {"fps": 5.0, "width": 320, "height": None, "commit_every_s": 12.0}})
    assert (old.source.fps, old.source.width, old.source.height, old.live.commit_every_s) == (5.0, 320, None, 12.0)
    overridden = with_overrides(load_config(environ={}), ["live.fps=5"])  # a camera's overrides, written before
    assert overridden.source.fps == 5.0 and "fps" not in overridden.to_dict()["live"]


def test_live_cameras_read_the_source_section_and_default_to_ten_fps():
    from odist.run_config import LIVE_FPS, LiveOptions

    assert LiveOptions.of(load_config(environ={})).fps == LIVE_FPS == 10.0
    options = LiveOptions.of(load_config(overrides=["source.fps=4", "source.width=64", "live.commit_every_s=3"],
                                         environ={}))
    assert (options.fps, options.width, options.height, options.commit_every_s) == (4.0, 64, None, 3.0)


def test_stream_options_come_from_the_config():
    from odist.distill.options import StreamOptions

    config = load_config(overrides=["distill.evaluate=true", "distill.max_frames=9", "source.frames=30",
                                    "source.seed=3", "storage.segment_frames=8"], environ={})
    options = StreamOptions.of(config, init="ckpt.pt")
    assert (options.evaluate, options.max_frames, options.frames, options.seed) == (True, 9, 30, 3)
    assert (options.segment_frames, options.init) == (8, "ckpt.pt")
