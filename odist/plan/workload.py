"""How often a camera's student asks the teacher, and how many updates each keyframe costs.

The default comes from the measured ``bench/results/accuracy_vs_cost_*.json`` runs of the adaptive
schedule with the default distillation settings (mean keyframe fraction over the scenarios, updates per
keyframe over all of them); without those files, from the paper's schedule at its most demanding: a
keyframe every 8 frames (the shortest stride) with 8 updates each. The peak rate is always one keyframe per
shortest stride, which is as often as the adaptive schedule ever asks.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odist.config import DistillConfig, StudentConfig
from odist.errors import ConfigError
from odist.plan.profiles import find_results


@dataclass(frozen=True)
class Workload:
    """Keyframes per frame (expected and peak), updates per keyframe, and where they come from."""

    keyframe_rate: float
    updates_per_keyframe: float
    peak_keyframe_rate: float
    source: str

    @property
    def updates_per_frame(self) -> float:
        return self.keyframe_rate * self.updates_per_keyframe

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"updates_per_frame": self.updates_per_frame}


def paper_workload() -> Workload:
    """The schedule's most demanding steady state: every shortest stride a keyframe, every update taken."""
    distill = DistillConfig()
    peak = 1.0 / min(distill.strides)
    return Workload(peak, float(distill.max_updates), peak,
                    f"paper defaults (PAPER.md): a keyframe every {min(distill.strides)} frames (the shortest "
                    f"stride) with {distill.max_updates} updates each, the most the adaptive schedule asks")


def default_workload(results_dir: Path | None = None, keyframe_rate: float | None = None) -> Workload:
    """The measured (or paper) workload; ``keyframe_rate`` replaces its keyframe rate."""
    folder = find_results(results_dir)
    workload = (measured_workload(folder) if folder is not None else None) or paper_workload()
    if keyframe_rate is None:
        return workload
    if not 0 < keyframe_rate <= 1:
        raise ConfigError(f"--keyframe-rate {keyframe_rate:g} is not a fraction of frames",
                          "pass a value in (0, 1], e.g. 0.1 for one keyframe in ten frames")
    return dataclasses.replace(workload, keyframe_rate=keyframe_rate,
                               peak_keyframe_rate=max(keyframe_rate, workload.peak_keyframe_rate),
                               source=f"--keyframe-rate {keyframe_rate:g}; updates per keyframe from "
                                      f"{workload.source}")


def measured_workload(folder: Path) -> Workload | None:
    """The adaptive schedule's rates in the ``accuracy_vs_cost`` results of ``folder``, or None."""
    runs = [run for path in sorted(folder.glob("accuracy_vs_cost*.json")) for run in _adaptive_runs(path)]
    if not runs:
        return None
    rate = sum(run["keyframe_fraction"] for run in runs) / len(runs)
    keyframes = sum(run["summary"]["keyframes"] for run in runs)
    updates = sum(run["updates"] for run in runs)
    scenarios = sorted({run["scenario"] for run in runs})
    peak = 1.0 / min(DistillConfig().strides)
    return Workload(rate, updates / max(1, keyframes), max(rate, peak),
                    f"measured: adaptive schedule with default settings in bench/results/accuracy_vs_cost_*.json "
                    f"(mean over {', '.join(scenarios)}; synthetic scenes, oracle teacher)")


def _adaptive_runs(path: Path) -> list[dict[str, Any]]:
    """The file's adaptive-schedule runs made with the default distillation and student settings."""
    try:
        runs = json.loads(path.read_text()).get("runs", [])
    except (OSError, ValueError, AttributeError):
        return []
    wanted = {section: _normalised(dataclasses.asdict(default()))
              for section, default in (("distill", DistillConfig), ("student", StudentConfig))}
    return [run for run in runs
            if isinstance(run, dict) and run.get("schedule") == "adaptive"
            and isinstance(run.get("config"), dict)
            and all(_with_defaults(run["config"].get(section), value) == value for section, value in wanted.items())
            and isinstance(run.get("summary"), dict) and "keyframes" in run["summary"]]


def _with_defaults(recorded: Any, defaults: dict[str, Any]) -> Any:
    """A recorded distill config with the keys it predates set to their defaults (as loading it would)."""
    return {**defaults, **_normalised(recorded)} if isinstance(recorded, dict) else recorded


def _normalised(value: Any) -> Any:
    return json.loads(json.dumps(value))
