"""The CLI's one flag-to-key table: flags given become config overrides, errors show their keys as flags."""

from __future__ import annotations

import dataclasses

import pytest

from odist.cli import build_parser
from odist.cli_args import FLAG_KEYS, FLAG_NAMES, ConfigFlag, config_from_args, error_line
from odist.config import OdistConfig
from odist.errors import ConfigError, check_config


def _has_key(key: str) -> bool:
    node: object = OdistConfig()
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            return False
        node = getattr(node, part)
    return True


def _config_flags() -> set[str]:
    found = set()
    for command in build_parser()._subparsers._group_actions[0].choices.values():
        found |= {a.option_strings[0] for a in command._actions if isinstance(a, ConfigFlag)}
    return found


def test_every_flag_of_the_table_sets_a_config_key_and_some_command_has_it():
    assert [key for key in FLAG_KEYS.values() if not _has_key(key)] == []
    assert set(FLAG_KEYS) == _config_flags()
    assert all(_has_key(key) for key in FLAG_NAMES if "." in key)


def test_a_flag_given_overrides_the_config_file_and_a_flag_left_out_keeps_it(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("fleet: {retries: 5, workers: 3}\nsource: {width: 320}\ndistill: {evaluate: true}\n")
    parser = build_parser()
    kept = config_from_args(parser.parse_args(["run", "m.jsonl", "--out", "o", "--config", str(config)]))
    assert (kept.fleet.retries, kept.fleet.workers, kept.source.width, kept.distill.evaluate) == (5, 3, 320, True)
    given = config_from_args(parser.parse_args(["run", "m.jsonl", "--out", "o", "--config", str(config),
                                                "--retries", "2", "--width", "96", "--max-frames", "7"]))
    assert (given.fleet.retries, given.fleet.workers, given.source.width) == (2, 3, 96)  # 2 is also the default
    assert given.distill.max_frames == 7


def test_switches_and_text_flags_become_typed_config_values():
    args = build_parser().parse_args(["distill", "synthetic:traffic", "--out", "o", "--evaluate", "--teacher",
                                      "oracle", "--init", "12", "--fps", "2.5", "--segment-frames", "8"])
    config = config_from_args(args)
    assert config.distill.evaluate is True and config.teacher.name == "oracle"
    assert config.distill.init == "12" and config.source.fps == 2.5 and config.storage.segment_frames == 8


def test_an_error_shows_the_keys_it_names_as_flags_and_nothing_else():
    with pytest.raises(ConfigError) as refused:
        check_config(False, "fleet.student_gpus", "shares such as 0.125 (fleet.student_cpus likewise)",
                     "fleet.student_cpus")
    assert error_line(refused.value) == ("invalid config value for --student-gpus "
                                         "(expected shares such as 0.125 (--student-cpus likewise))")
    named_in_passing = ConfigError("fleet.workers was 0 in run.yaml", "set fleet.workers")
    assert error_line(named_in_passing) == str(named_in_passing)  # it names no key: its text stays as written
    no_flag = ConfigError("invalid config value for distill.lr", keys=("distill.lr",))
    assert error_line(no_flag) == "invalid config value for distill.lr"


def test_library_words_for_keyword_arguments_read_as_flags():
    both = ConfigError("overwrite and resume contradict each other", "pass one of them", keys=("overwrite", "resume"))
    assert error_line(both) == "--overwrite and --resume contradict each other (pass one of them)"


@pytest.mark.parametrize("argv", [["distill", "x.mp4"], ["run", "m.jsonl"], ["pretrain", "x.mp4"],
                                  ["live", "cameras.yaml"]])
def test_a_flag_left_out_means_what_its_help_says(argv):
    from odist.run_config import LIVE_FPS, LiveOptions

    args = build_parser().parse_args([*argv, "--out", "o"])
    config = config_from_args(args)
    assert getattr(args, "given", ()) == ()
    for flag, key in FLAG_KEYS.items():
        shown = getattr(args, flag[2:].replace("-", "_"), None)
        if shown is None or flag == "--teacher":  # None: the config's; --teacher's None is "auto"
            continue
        value = config
        for part in key.split("."):
            value = getattr(value, part)
        if argv[0] == "live" and flag == "--fps":
            assert shown == LiveOptions.of(config).fps == LIVE_FPS
        else:
            assert shown == value, flag
