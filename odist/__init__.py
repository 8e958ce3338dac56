"""odist: online model distillation for video, at fleet scale.

The public API, in ``__all__``; everything else is internal and may change:

- ``load_config(path, overrides)``: the typed config tree (``OdistConfig``), from defaults, a file,
  ``ODIST__SECTION__KEY`` environment variables and ``section.key=value`` overrides;
- ``distill(input, out, config)``: one stream, as ``odist distill``; returns its summary;
- ``run(inputs, out, config)``: a fleet job on Ray, as ``odist run``; returns its ``FleetSummary``;
- ``live(cameras, out=...)``: live cameras until stopped, as ``odist live``; returns their final status;
- ``read_run(run)``: every frame record of a run, as an Arrow dataset;
- ``report(runs)``: the fleet cost report, as ``odist report``;
- ``plan(cameras=..., fps=..., gpu=...)``: a cluster size, as ``odist plan``;
- ``export(run, stream_id, out)``: a stream's student as ONNX or a ``torch.export`` program, as ``odist export``.

``distill`` and ``run`` read what to run from the config (``distill.max_frames``, ``source.width``, ...: every
flag of the commands is a config key) and take only per-call arguments besides (``resume``, ``progress``, ...).
Names are imported on first use, so ``import odist`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from odist._version import __version__

__all__ = ["ConfigError", "FleetConfig", "LiveConfig", "OdistConfig", "OdistError", "PoolConfig", "SourceConfig",
           "__version__", "distill", "export", "live", "load_config", "plan", "read_run", "report", "run"]

_HOMES = {
    "load_config": "odist.config", "OdistConfig": "odist.config", "FleetConfig": "odist.run_config",
    "PoolConfig": "odist.run_config", "LiveConfig": "odist.run_config", "SourceConfig": "odist.config",
    "OdistError": "odist.errors", "ConfigError": "odist.errors", "run": "odist.fleet.api",
    "read_run": "odist.storage.reader",
}
_PACKAGES = ("distill", "live", "report", "plan", "export")  # callable packages: odist.distill(...) runs a stream


def __getattr__(name: str) -> Any:
    if name in _PACKAGES:
        return importlib.import_module(f"odist.{name}")
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'odist' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
