"""Checking and resolving the keyword arguments the library entry points share (``odist.distill``,
``odist.run``, ``odist.live``).

Torch-free, so the fleet and live drivers can resolve their config without importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from odist import api_types
from odist.config import OdistConfig, choice_overrides, load_config, with_overrides
from odist.errors import ConfigError


def resolve_config(config: OdistConfig | str | os.PathLike[str] | None = None, overrides: Sequence[str] = (), *,
                   teacher: str | None = None, device: str | None = None) -> OdistConfig:
    """A config from an ``OdistConfig``, a YAML/JSON path or None (defaults and environment), then
    ``section.key=value`` ``overrides``, ``teacher`` (``teacher.name``) and ``device``."""
    overrides = api_types.texts("overrides", overrides)
    teacher, device = api_types.text("teacher", teacher), api_types.text("device", device)
    extra = [*overrides, *choice_overrides(teacher, device)]
    if isinstance(config, OdistConfig):
        return with_overrides(config, extra)
    if config is not None:
        config = api_types.location("config", config, "an OdistConfig, a config file path or None")
    return load_config(config, extra)


def check_positive(**values: int | None) -> None:
    """A ``ConfigError`` naming the first keyword whose value is not a whole number (or None) or is below 1."""
    for name, value in values.items():
        if api_types.whole(name, value) is not None and value < 1:
            raise ConfigError(f"{name} {value} is not positive", "pass a frame count >= 1")


def check_stream_arguments(*, evaluate: object, init: object, width: object, height: object, fps: object,
                           frames: object, seed: object, progress: object) -> None:
    """A ``ConfigError`` naming the first per-stream keyword (shared by ``distill`` and ``run``) of a wrong type."""
    api_types.flag("evaluate", evaluate)
    api_types.flag("progress", progress)
    api_types.text("init", init, "a checkpoint path or URI")
    for name, value in (("width", width), ("height", height), ("frames", frames)):
        api_types.whole(name, value)
    api_types.whole("seed", seed, optional=False)
    api_types.number("fps", fps)
