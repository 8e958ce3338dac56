"""Per-GPU costs of a student and a teacher frame: measured where a GPU benchmark exists, estimated otherwise.

A measured profile is a ``bench/frame_cost.py`` result written as ``bench/results/gpu_<TYPE>.json``, e.g.
``python bench/frame_cost.py --device cuda --out bench/results/gpu_a10g.json``; it replaces the reference
figures of ``<TYPE>`` (or adds a new type, which then must carry ``"gpu_memory_gb"``). Every other GPU
type is a *reference estimate*, not a measurement:

- student (JITNet x1.0 at 1280x720): 7 ms inference and 30 ms per update, the paper's GPU cost model
  (PAPER.md, ``CostModelConfig``);
- teacher (Mask R-CNN R50-FPN): 90 ms per frame at batch 1, torchvision's published test time on a V100
  (it resizes every frame to a shorter side of 800, so the cost hardly depends on the camera's resolution);
- both are taken as V100 figures and divided by the GPU's approximate throughput relative to a V100,
  judged from published specifications (tensor throughput and memory bandwidth).

Each profile's ``source`` says which of the two it is.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odist.config import CostModelConfig
from odist.errors import ConfigError

DEFAULT_RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"  # in a checkout only
RESULTS_ENV = "ODIST_RESULTS"
REFERENCE_FRAME = (1280, 720)
V100_TEACHER_MS = 90.3  # torchvision detection docs: Mask R-CNN R50-FPN, 0.0903 s/it test time, V100, batch 1
# Each frame added to a teacher batch costs this share of a lone frame (estimate: batch 8 runs ~1.3x the
# frames per second of batch 1 on a GPU that a single 800x1333 Mask R-CNN frame already mostly fills).
TEACHER_BATCH_MARGINAL = 0.75


@dataclass(frozen=True)
class GpuProfile:
    """What one GPU type costs per frame, and where the numbers come from (``source``)."""

    name: str
    label: str
    memory_gb: float
    student_inference_ms: float
    student_update_ms: float
    teacher_ms: float
    frame_width: int = REFERENCE_FRAME[0]
    frame_height: int = REFERENCE_FRAME[1]
    teacher_batch_marginal: float = TEACHER_BATCH_MARGINAL
    measured: bool = False
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# name: (label, GPU memory in GB, throughput relative to a V100 -- an estimate from published specifications)
REFERENCE_GPUS: dict[str, tuple[str, float, float]] = {
    "t4": ("NVIDIA T4 (AWS g4dn)", 16.0, 0.4),
    "v100": ("NVIDIA V100 16GB (AWS p3)", 16.0, 1.0),
    "a10g": ("NVIDIA A10G (AWS g5)", 24.0, 0.9),
    "l4": ("NVIDIA L4 (AWS g6)", 24.0, 0.8),
    "l40s": ("NVIDIA L40S (AWS g6e)", 48.0, 1.8),
    "a100": ("NVIDIA A100 40GB (AWS p4d)", 40.0, 2.0),
    "a100-80gb": ("NVIDIA A100 80GB (AWS p4de)", 80.0, 2.2),
    "h100": ("NVIDIA H100 80GB (AWS p5)", 80.0, 3.0),
}


def reference_profile(name: str) -> GpuProfile:
    """The estimated profile of a known GPU type (``ConfigError`` for an unknown one)."""
    if name not in REFERENCE_GPUS:
        raise unknown_gpu(name, sorted(REFERENCE_GPUS))
    label, memory_gb, speed = REFERENCE_GPUS[name]
    paper = CostModelConfig()
    source = (f"reference estimate, not measured: paper cost model (student {paper.student_inference_ms:g} ms "
              f"inference, {paper.student_update_ms:g} ms update at 1280x720) and torchvision's published Mask "
              f"R-CNN R50-FPN time ({V100_TEACHER_MS:g} ms on a V100), taken as V100 figures and scaled by "
              f"{speed:g}x, this GPU's approximate speed relative to a V100 from published specifications")
    return GpuProfile(name=name, label=label, memory_gb=memory_gb,
                      student_inference_ms=paper.student_inference_ms / speed,
                      student_update_ms=paper.student_update_ms / speed,
                      teacher_ms=V100_TEACHER_MS / speed, source=source)


def find_results(results_dir: str | Path | None = None) -> Path | None:
    """Where benchmark results are read from: ``results_dir``, else ``$ODIST_RESULTS``, else this checkout's
    ``bench/results`` (an installed wheel has none: pass ``--results``); None when there is no such folder."""
    if results_dir is not None:
        return Path(results_dir)
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    return DEFAULT_RESULTS_DIR if DEFAULT_RESULTS_DIR.is_dir() else None


def load_profiles(results_dir: Path | None = None) -> dict[str, GpuProfile]:
    """Every known GPU type: reference estimates, replaced or extended by ``gpu_*.json`` in ``results_dir``
    (``find_results`` when None)."""
    profiles = {name: reference_profile(name) for name in REFERENCE_GPUS}
    folder = find_results(results_dir)
    for path in sorted(folder.glob("gpu_*.json")) if folder is not None and folder.is_dir() else []:
        profile = measured_profile(path, profiles.get(_type_name(path)))
        profiles[profile.name] = profile
    return profiles


def find_profile(profiles: dict[str, GpuProfile], name: str) -> GpuProfile:
    """The profile of GPU type ``name`` (case-insensitive); ``ConfigError`` listing the known types."""
    key = name.strip().lower()
    if key not in profiles:
        raise unknown_gpu(name, sorted(profiles))
    return profiles[key]


def unknown_gpu(name: str, known: list[str]) -> ConfigError:
    return ConfigError(f"unknown GPU type {name!r}",
                       f"pass --gpu with one of: {', '.join(known)}; or measure it with "
                       "python bench/frame_cost.py --device cuda --out bench/results/gpu_<TYPE>.json")


def measured_profile(path: Path, reference: GpuProfile | None) -> GpuProfile:
    """The profile in a ``bench/frame_cost.py`` GPU result; memory from the file or the type's reference."""
    data = _read(path)
    try:
        env = data.get("environment", {})
        if not str(env.get("device", "")).startswith("cuda"):
            raise ValueError(f"it was measured on {env.get('device')!r}, not a CUDA device")
        student = _pick(data["students"], "width_multiplier", 1.0)
        teacher = _pick(data["teachers"], "arch", "v1")
        width, height = int(data["frame"]["width"]), int(data["frame"]["height"])
        inference_ms, update_ms, teacher_ms = float(student["ms"]), float(student["update_ms"]), float(teacher["ms"])
    except (KeyError, TypeError, ValueError, StopIteration) as exc:
        raise ConfigError(f"{path} is not a GPU frame_cost result ({exc})",
                          "rewrite it with python bench/frame_cost.py --device cuda --out "
                          f"{path.name}, or remove it") from None
    memory = data.get("gpu_memory_gb", reference.memory_gb if reference else None)
    if memory is None:
        raise ConfigError(f"{path} names a GPU type without a known memory size",
                          'add "gpu_memory_gb": SIZE to the file')
    device = env.get("cuda_device_name", _type_name(path))
    memory_from = "the file" if "gpu_memory_gb" in data else "the type's reference figure"
    source = (f"measured: {path.name} ({device}, {data.get('setup', 'setup not recorded')}, JITNet x1.0 and "
              f"Mask R-CNN R50-FPN v1 at {width}x{height}); GPU memory from {memory_from}; teacher batching "
              "gain is a reference estimate")
    return GpuProfile(name=_type_name(path), label=str(device), memory_gb=float(memory),
                      student_inference_ms=inference_ms, student_update_ms=update_ms, teacher_ms=teacher_ms,
                      frame_width=width, frame_height=height,
                      teacher_batch_marginal=float(data.get("teacher_batch_marginal", TEACHER_BATCH_MARGINAL)),
                      measured=True, source=source)


def _type_name(path: Path) -> str:
    return path.stem.removeprefix("gpu_").lower()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read GPU profile {path} ({exc})", "fix or remove the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"GPU profile {path} is not a JSON object", "fix or remove the file")
    return data


def _pick(rows: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any]:
    """The row whose ``key`` is ``value``, else the first row."""
    return next((row for row in rows if row.get(key) == value), None) or next(iter(rows))
