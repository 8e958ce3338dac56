"""Helpers shared by the benchmark scripts: environment facts, Markdown tables, JSON results."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from odist import __version__
from odist.storage.atomic import write_json_atomic

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def jemalloc_preloaded() -> bool:
    """Whether this process runs with jemalloc in ``LD_PRELOAD`` (about 2x faster CPU torch here)."""
    return "jemalloc" in os.environ.get("LD_PRELOAD", "")


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` when ``threads`` is positive; 0 keeps torch's default."""
    if threads > 0:
        torch.set_num_threads(threads)


def environment(device: str = "cpu") -> dict[str, Any]:
    """What the numbers depend on: versions, threads, allocator, machine and device."""
    info: dict[str, Any] = {
        "odist_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "jemalloc_preloaded": jemalloc_preloaded(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["cuda_device_name"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda_version"] = torch.version.cuda
    return info


def describe_environment(info: dict[str, Any]) -> str:
    """One line for the top of a report."""
    allocator = "jemalloc preloaded" if info["jemalloc_preloaded"] else "jemalloc NOT preloaded (slower CPU torch)"
    device = info.get("cuda_device_name", info["device"])
    return (f"torch {info['torch_version']}, torch threads {info['torch_threads']}, {allocator}, "
            f"device {device}, {info['cpu_count']} CPUs")


def fmt(value: float | None, digits: int = 3, suffix: str = "") -> str:
    """A number for a table cell; ``n/a`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}{suffix}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table with right-aligned columns after the first ones of text."""
    align = ["---" if _is_text_column(rows, i) else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _is_text_column(rows: Sequence[Sequence[str]], index: int) -> bool:
    for row in rows:
        cell = row[index].rstrip("x").replace("n/a", "")
        if cell:
            try:
                float(cell)
            except ValueError:
                return True
    return False


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as strict JSON (NaN becomes null), atomically."""
    write_json_atomic(path, payload)


def write_manifest(folder: Path, count: int, prefix: str = "s") -> Path:
    """A JSONL manifest of ``count`` synthetic streams cycling through the scenarios."""
    import json

    from odist.video.synthetic import SCENARIOS

    scenarios = list(SCENARIOS)
    path = folder / f"manifest-{prefix}{count}.jsonl"
    with path.open("w") as f:
        for i in range(count):
            scenario = scenarios[i % len(scenarios)]
            f.write(json.dumps({"uri": f"synthetic:{scenario}", "stream_id": f"{prefix}{i:05d}-{scenario}"}) + "\n")
    return path
