"""The ``odist`` command's flags as config keys, and config keys as flags: one table, ``FLAG_KEYS``.

A flag of the table given on the command line overrides the config file's value (``fleet.workers`` for
``--workers``); a flag left out leaves the file's value alone. Library errors name config keys (and the
keyword arguments of the calls): ``error_line`` shows the ones the error names as the command's flags.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from odist.config import OdistConfig, load_config
from odist.errors import ConfigError, OdistError
from odist.run_config import PoolConfig

# Every flag that sets a config key, and its key.
FLAG_KEYS: dict[str, str] = {
    "--teacher": "teacher.name", "--device": "device",
    "--evaluate": "distill.evaluate", "--max-frames": "distill.max_frames", "--init": "distill.init",
    "--width": "source.width", "--height": "source.height", "--fps": "source.fps", "--frames": "source.frames",
    "--seed": "source.seed", "--segment-frames": "storage.segment_frames",
    "--address": "fleet.address", "--workers": "fleet.workers",
    "--max-streams-in-flight": "fleet.max_streams_in_flight",
    "--retries": "fleet.retries", "--student-gpus": "fleet.student_gpus", "--student-cpus": "fleet.student_cpus",
    "--warm-start": "fleet.warm_start", "--teacher-gpus": "pool.num_gpus", "--teacher-batch": "pool.max_batch_size",
    "--commit-every": "live.commit_every_s", "--read-timeout": "live.read_timeout_s",
    "--give-up-after": "live.give_up_after_s", "--status-every": "live.status_every_s",
}
# How errors show the keys and keyword arguments they name: the table's keys as their flags, and the rest.
FLAG_NAMES: dict[str, str] = {
    **{key: flag for flag, key in FLAG_KEYS.items()},
    "pool.min_replicas": "--teacher-replicas", "pool.max_replicas": "--teacher-replicas",
    "resume": "--resume", "overwrite": "--overwrite", "resume=True": "--resume", "overwrite=True": "--overwrite",
    "another out": "another --out", "device=cpu": "--device cpu",
}


class ConfigFlag(argparse.Action):
    """Stores a flag's value and notes the flag in ``args.given``: only given flags override the config."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        namespace.given = (*getattr(namespace, "given", ()), self.option_strings[0])


def config_flag(p: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """Add ``flag``, which sets its ``FLAG_KEYS`` key when given (``switch=True``: a flag without a value)."""
    if flag not in FLAG_KEYS:
        raise KeyError(f"{flag} has no config key in FLAG_KEYS")
    if kwargs.pop("switch", False):
        kwargs.update(nargs=0, const=True, default=False)
    p.add_argument(flag, action=ConfigFlag, **kwargs)


def error_line(exc: OdistError) -> str:
    """``exc``'s message as the command shows it: the keys it names written as their flags."""
    return exc.shown(FLAG_NAMES)


def config_from_args(args: argparse.Namespace) -> OdistConfig:
    """The config of a command: ``--config`` file, environment, ``--set``, then the ``FLAG_KEYS`` flags that
    were given, and ``--teacher-replicas``."""
    overrides = list(args.overrides)
    for flag in getattr(args, "given", ()):
        overrides.append(f"{FLAG_KEYS[flag]}={json.dumps(getattr(args, flag[2:].replace('-', '_')))}")
    pool = teacher_pool_config(args)
    if pool is not None:
        overrides += ["pool.enabled=true", f"pool.min_replicas={pool.min_replicas}",
                      f"pool.max_replicas={pool.max_replicas}", f"pool.num_cpus={pool.num_cpus}"]
    return load_config(args.config, overrides)


def teacher_pool_config(args: argparse.Namespace) -> PoolConfig | None:
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

