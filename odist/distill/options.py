"""What a stream run needs to know besides the config (``StreamOptions``) and the version manifest.

Torch-free on purpose: the fleet driver builds options and writes ``run.json`` for thousands of streams
without importing torch (the workers do that).
"""

from __future__ import annotations

import functools
import importlib.util
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odist._version import __version__
from odist.config import OdistConfig
from odist.run_config import SEGMENT_FRAMES


@dataclass(frozen=True)
class StreamOptions:
    """How to read and distill a stream, apart from the config: evaluation, length, source and commits."""

    evaluate: bool = False
    max_frames: int | None = None
    init: str | None = None
    init_from: str = "--init"  # what chose ``init``: "--init", "manifest" or "fleet" (recorded in stream.json)
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: int | None = None
    seed: int = 0
    segment_frames: int = SEGMENT_FRAMES

    @classmethod
    def of(cls, config: OdistConfig, **per_stream: Any) -> StreamOptions:
        """The options ``config`` gives every stream: ``distill.evaluate``, ``distill.max_frames`` and
        ``distill.init``, the ``source`` section and ``storage.segment_frames``; ``per_stream`` replaces some."""
        d, s = config.distill, config.source
        return cls(**{"evaluate": d.evaluate, "max_frames": d.max_frames, "init": d.init, "width": s.width,
                      "height": s.height, "fps": s.fps, "frames": s.frames, "seed": s.seed,
                      "segment_frames": config.storage.segment_frames, **per_stream})

    def open(self, uri: str) -> Any:
        """The frame source of ``uri`` with these options."""
        from odist.video.open import open_source

        return open_source(uri, seed=self.seed, width=self.width, height=self.height, frames=self.frames,
                           fps=self.fps)


@functools.cache
def torch_version() -> str | None:
    """``torch.__version__`` of the installed torch, read from its ``version.py`` without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    version_file = Path(spec.origin).with_name("version.py")
    try:
        found = re.search(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", version_file.read_text(), re.MULTILINE)
    except OSError:
        found = None
    if found is None:  # an unusual install: ask torch itself
        import torch

        return str(torch.__version__)
    return found.group(1)


def run_manifest() -> dict[str, Any]:
    """Versions and time, written into ``run.json`` and every ``stream.json``."""
    return {"odist_version": __version__, "torch_version": torch_version(),
            "python": platform.python_version(), "created_unix": time.time()}


def run_document(input_uri: str, config: OdistConfig) -> dict[str, Any]:
    """The run's manifest (``run.json``), one shape for every command: versions, the input and the full config."""
    return {**run_manifest(), "input": input_uri, "config": config.to_dict()}


def stream_manifest(config: OdistConfig, input_uri: str, **fields: Any) -> dict[str, Any]:
    """A stream's manifest (``stream.json``; see ``identity``): versions, its input, ``fields``, the full config."""
    return {**run_manifest(), "input": input_uri, **fields, "config": config.to_dict()}
