"""The ``odist`` command's flags as config keys and library arguments, and library errors as flags.

A flag given on the command line overrides the config file's value (``fleet.workers`` for ``--workers``);
a flag left at its default leaves the file's value alone. Library errors name config keys and keyword
arguments; ``as_flags`` rewrites a message in the command's words.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from typing import Any

from odist.config import OdistConfig, choice_overrides, load_config
from odist.errors import ConfigError
from odist.run_config import PoolConfig

RAY_KEYS = {"address": "fleet.address", "workers": "fleet.workers",
            "max_streams_in_flight": "fleet.max_streams_in_flight", "retries": "fleet.retries",
            "student_gpus": "fleet.student_gpus", "student_cpus": "fleet.student_cpus",
            "teacher_gpus": "pool.num_gpus", "teacher_batch": "pool.max_batch_size"}
LIVE_KEYS = {"fps": "live.fps", "width": "live.width", "height": "live.height", "commit_every": "live.commit_every_s",
             "read_timeout": "live.read_timeout_s", "give_up_after": "live.give_up_after_s",
             "status_every": "live.status_every_s"}
FLAGS = {key: "--" + dest.replace("_", "-") for dest, key in {**RAY_KEYS, **LIVE_KEYS}.items()}
FLAGS.update({"pool.min_replicas": "--teacher-replicas", "pool.max_replicas": "--teacher-replicas",
              "max_frames": "--max-frames", "segment_frames": "--segment-frames", "resume=True": "--resume",
              "overwrite=True": "--overwrite", "overwrite and resume": "--overwrite and --resume",
              "another out": "another --out", "device=cpu": "--device cpu"})
_FLAG_PATTERN = re.compile("|".join(rf"(?<![\w.-]){re.escape(key)}(?![\w])"
                                    for key in sorted(FLAGS, key=len, reverse=True)))


def as_flags(message: str) -> str:
    """``message`` with the config keys and keyword arguments the CLI has flags for written as those flags."""
    return _FLAG_PATTERN.sub(lambda m: FLAGS[m.group(0)], message)


def config_from_args(args: argparse.Namespace, keys: dict[str, str] | None = None) -> OdistConfig:
    """The config of a command: ``--config`` file, environment, ``--set``, ``--teacher``/``--device``, then
    the flags in ``keys`` (flag dest -> config key) that were given, and ``--teacher-replicas``."""
    overrides = [*args.overrides, *choice_overrides(args.teacher, args.device)]
    for dest, key in (keys or {}).items():
        if dest in getattr(args, "explicit", ()):
            overrides.append(f"{key}={_json(getattr(args, dest))}")
    pool = _teacher_pool_config(args)
    if pool is not None:
        overrides += ["pool.enabled=true", f"pool.min_replicas={pool.min_replicas}",
                      f"pool.max_replicas={pool.max_replicas}", f"pool.num_cpus={pool.num_cpus}"]
    config = load_config(args.config, overrides)
    for flag, value in (("--max-frames", getattr(args, "max_frames", None)),
                        ("--segment-frames", getattr(args, "segment_frames", None))):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value} is not positive", "pass a frame count >= 1")
    return config


def _teacher_pool_config(args: argparse.Namespace) -> PoolConfig | None:
    """The pool settings from ``--teacher-replicas MIN:MAX`` (None without the flag)."""
    if getattr(args, "teacher_replicas", None) is None:
        return None
    low, sep, high = args.teacher_replicas.partition(":")
    try:
        low_n, high_n = int(low), int(high if sep else low)
    except ValueError:
        raise ConfigError(f"--teacher-replicas {args.teacher_replicas!r} is not MIN:MAX",
                          "write e.g. --teacher-replicas 1:4") from None
    cpus = 0.0 if args.teacher_gpus > 0 else 1.0
    pool = PoolConfig(enabled=True, min_replicas=low_n, max_replicas=high_n, max_batch_size=args.teacher_batch,
                      num_gpus=args.teacher_gpus, num_cpus=cpus)
    pool.validate()
    return pool


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The dests of the options that appear in ``argv`` (including those of the chosen subcommand)."""
    found: set[str] = set()
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions.extend(sub._actions)
    for action in actions:
        if any(token == opt or token.startswith(opt + "=") for opt in action.option_strings for token in argv):
            found.add(action.dest)
    return found


def _json(value: Any) -> str:
    return json.dumps(value)
