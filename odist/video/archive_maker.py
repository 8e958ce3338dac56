"""Generate a small video archive from the synthetic scenarios: mp4 files, label PNGs and a manifest."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from odist.storage.location import clean_stream_id
from odist.video.export import write_synthetic
from odist.video.synthetic import SyntheticSource

MANIFEST_NAME = "manifest.jsonl"


def make_archive(out_dir: str | Path, scenarios: Sequence[str], *, cameras: int = 1, frames: int = 300,
                 width: int = 640, height: int = 360, seed: int = 0,
                 on_clip: Callable[[str], None] | None = None) -> Path:
    """Write ``cameras`` clips per scenario (seeds ``seed``, ``seed+1``, ...) and a JSONL manifest.

    Each manifest row names the clip's mp4 and its label folder (for the replay teacher), with paths
    relative to the manifest. Returns the manifest's path.
    """
    root = Path(out_dir)
    rows = []
    for scenario in scenarios:
        for camera in range(cameras):
            stream_id = f"{clean_stream_id(scenario)}-{camera:03d}"  # "traffic+pan" -> "traffic-pan-000"
            source = SyntheticSource(scenario, seed=seed + camera, width=width, height=height, frames=frames)
            clip = write_synthetic(source, root / stream_id)
            rows.append({"uri": str(clip.video.relative_to(root)), "stream_id": stream_id,
                         "labels": str(clip.labels.relative_to(root))})
            if on_clip is not None:
                on_clip(stream_id)
    manifest = root / MANIFEST_NAME
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
