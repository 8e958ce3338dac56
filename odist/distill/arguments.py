"""Checking and resolving the keyword arguments the library entry points share (``odist.distill``,
``odist.run``, ``odist.live``).

Torch-free, so the fleet and live drivers can resolve their config without importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from odist.config import OdistConfig, load_config, with_overrides
from odist.errors import ConfigError


def resolve_config(config: OdistConfig | str | os.PathLike[str] | None = None, overrides: Sequence[str] = (), *,
                   teacher: str | None = None, device: str | None = None) -> OdistConfig:
    """A config from an ``OdistConfig``, a YAML/JSON path or None (defaults and environment), then
    ``section.key=value`` ``overrides``, ``teacher`` (``teacher.name``) and ``device``."""
    extra = [*overrides, *([] if teacher is None else [f"teacher.name={teacher}"]),
             *([] if device is None else [f"device={device}"])]
    if isinstance(config, OdistConfig):
        return with_overrides(config, extra)
    return load_config(config, extra)


def check_positive(**values: int | None) -> None:
    """A ``ConfigError`` naming the first keyword whose value is given and below 1."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise ConfigError(f"{name} {value} is not positive", "pass a frame count >= 1")
