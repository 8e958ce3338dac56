"""Resolving the config the library entry points share (``odist.distill``, ``odist.run``, ``odist.live``), and
the one-line refusal of the keyword arguments that became config keys.

Torch-free, so the fleet and live drivers can resolve their config without importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from odist import api_types
from odist.config import OdistConfig, choice_overrides, load_config, with_overrides
from odist.errors import ConfigError

# The keyword arguments ``odist.distill`` and ``odist.run`` took before they read the config tree, and the key
# that holds each now.
MOVED_KEYWORDS = {
    "teacher": "teacher.name", "device": "device", "evaluate": "distill.evaluate",
    "max_frames": "distill.max_frames", "init": "distill.init", "width": "source.width",
    "height": "source.height", "fps": "source.fps", "frames": "source.frames", "seed": "source.seed",
    "segment_frames": "storage.segment_frames", "warm_start": "fleet.warm_start", "fleet": "fleet", "pool": "pool",
}


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


def refuse_moved(call: str, keywords: Mapping[str, Any]) -> None:
    """A ``ConfigError`` naming the config key that now holds the first of ``keywords`` (which ``call`` took
    before); a ``TypeError``, as Python's own, for a keyword it never took."""
    for name in keywords:
        key = MOVED_KEYWORDS.get(name)
        if key is None:
            raise TypeError(f"{call}() got an unexpected keyword argument {name!r}")
        fix = (f"set the config's {key} section instead, e.g. config=dataclasses.replace(config, {key}=...)"
               if key in ("fleet", "pool") else f"set the config key {key} instead, e.g. overrides=['{key}=...']")
        raise ConfigError(f"{call}() takes no {name}= argument any more", fix)
