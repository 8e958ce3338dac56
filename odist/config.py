"""The one typed configuration tree, with the paper's defaults (except ``student.fine_skips``,
``distill.iou_loss_weight`` and the keyframe policy: the cut, drift and confidence triggers, empty keyframes
holding the rung, more updates on a stream's first keyframes and on a new view's; ``PAPER_KEYFRAME_POLICY``
gives back the paper's loop).

Sources, in increasing precedence: defaults < a YAML/JSON file (``--config``) < environment
variables ``ODIST__SECTION__KEY=value`` < command-line ``--set section.key=value``.
Every value is validated once, in ``OdistConfig.validate``; a bad value is a ``ConfigError``
naming the key and the allowed range.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odist.config_parse import apply_overrides, build, parse_scalar, read_file, set_dotted
from odist.errors import check_config
from odist.method_config import DistillConfig, StudentConfig
from odist.run_config import FleetConfig, LiveConfig, PoolConfig, StorageConfig

DEFAULT_CLASSES: tuple[str, ...] = ("background", "person", "vehicle", "bike")
DEFAULT_CLASS_GROUPS: dict[str, list[str]] = {
    "person": ["person"],
    "vehicle": ["car", "bus", "truck"],
    "bike": ["bicycle", "motorcycle"],
}
ENV_PREFIX = "ODIST__"
# ``--set`` overrides that give back the paper's keyframe loop exactly: every trigger off, ladder 8..64.
PAPER_KEYFRAME_POLICY: tuple[str, ...] = (
    "distill.cut_threshold=0", "distill.drift_threshold=0", "distill.confidence_drop=0", "distill.flip_threshold=0",
    "distill.empty_keyframes=climb", "distill.strides=[8,16,32,64]", "distill.view_bank_size=0",
    "distill.boost_updates=0", "distill.early_keyframes=0",
)


@dataclass
class SourceConfig:
    """How every input's frames are read, archive or live camera alike: size, sampling, and the length and
    seed of synthetic scenes (a live camera's own ``fps`` in CAMERAS.yaml wins over ``fps``)."""

    width: int | None = None  # resize frames to this width (a synthetic scene's width); None: the input's
    height: int | None = None
    # Sample frames at this rate; None: every frame of a video, 10 fps from a live camera.
    fps: float | None = None
    frames: int | None = None  # length of a synthetic scene (None: 900 frames)
    seed: int = 0  # a synthetic scene's seed

    def validate(self) -> SourceConfig:
        for key, value in (("width", self.width), ("height", self.height), ("frames", self.frames)):
            check_config(value is None or value >= 1, f"source.{key}", "a positive whole number, or null")
        check_config(self.fps is None or self.fps > 0, "source.fps", "a positive frame rate, or null")
        return self


@dataclass
class TeacherConfig:
    """Which teacher labels keyframes and how its output becomes class maps."""

    name: str = "auto"  # the oracle for synthetic inputs, else Mask R-CNN with COCO weights (teachers.choice)
    weights: str | None = None
    arch: str = "v1"
    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    class_groups: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_CLASS_GROUPS))
    # What a simulated teacher (oracle, replay) charges per frame: the paper's Mask R-CNN cost.
    charged_ms: float = 300.0
    charged_gflops: float = 520.0
    # What the teacher costs per frame on the student's device (ms), for the measured speed-up when the teacher
    # did not run there (oracle, replay, a teacher pool); None: measure the configured Mask R-CNN once per
    # device and frame size and cache it (odist.models.teachers.device_cost).
    device_ms: float | None = None
    batch_size: int = 4
    # An ONNX teacher's class names by class id (``coco``: torchvision's 91 COCO slots); empty: the model's metadata.
    onnx_classes: tuple[str, ...] = ()

    def validate(self, classes: tuple[str, ...]) -> TeacherConfig:
        t = self
        check_config(t.arch in ("v1", "v2"), "teacher.arch", "'v1' or 'v2' (torchvision Mask R-CNN R50-FPN)")
        check_config(0 <= t.score_threshold <= 1 and 0 <= t.mask_threshold <= 1, "teacher.score_threshold",
                     "thresholds in [0, 1]")
        check_config(t.charged_ms >= 0 and t.charged_gflops >= 0, "teacher.charged_ms", "non-negative costs")
        check_config(t.device_ms is None or t.device_ms > 0, "teacher.device_ms", "a positive number of ms, or null")
        check_config(t.batch_size >= 1, "teacher.batch_size", "a positive batch size")
        unknown = sorted(set(t.class_groups) - set(classes[1:]))
        check_config(not unknown, "teacher.class_groups",
                     f"groups named after the stream's classes {list(classes[1:])}, not {unknown}")
        return self


@dataclass
class CostModelConfig:
    """The authors' GPU cost model, in ms per frame (PAPER.md)."""

    teacher_ms: float = 300.0
    student_inference_ms: float = 7.0
    student_update_ms: float = 30.0

    def validate(self) -> CostModelConfig:
        check_config(min(self.teacher_ms, self.student_inference_ms, self.student_update_ms) >= 0, "cost_model",
                     "non-negative costs in ms")
        return self


@dataclass
class PerformanceConfig:
    """Speed switches; see docs/configuration.md "GPU switches". Only channels_last is on by default: it is exact on the
    CPU (the same class maps as the contiguous layout) and 1.5-1.6x faster there (bench/student_cpu.py).

    On the CPU a GPU-only switch (fp16 autocast, pinned uploads, the memory share) falls back to its
    off state and says why once; bf16 autocast stays on where the CPU runs it.
    """

    # Autocast dtype of the student's inference and updates: "off", "bf16" or "fp16" (updates use a GradScaler).
    # bf16 is 1.6-2.0x faster on a CPU with avx512_bf16; over whole streams it scores within 0.005 mIoU of fp32
    # or better on four of five inputs but 0.009 lower on static_easy (bench/normalisation.py): it stays a switch.
    amp: str = "off"
    # Autocast dtype of the Mask R-CNN teacher's inference: "off", "bf16" or "fp16".
    teacher_amp: str = "off"
    # channels_last memory format for the student's weights and inputs: oneDNN's fast convolutions on the
    # CPU (1.64x inference at 1280x720, 1.50x at 640x360, the same class maps), tensor cores on a GPU.
    channels_last: bool = True
    # Copy each frame into page-locked host memory before its non-blocking upload to the GPU.
    pinned_uploads: bool = False
    # torch.compile the student's forward pass; falls back to eager (with a warning) when compiling fails.
    compile: bool = False
    # The student's share of its GPU, in (0, 1]; None: no cap (a fleet worker uses its Ray num_gpus share).
    gpu_memory_fraction: float | None = None

    def validate(self) -> PerformanceConfig:
        check_config(self.amp in AMP_MODES, "performance.amp", f"one of {', '.join(AMP_MODES)}")
        check_config(self.teacher_amp in AMP_MODES, "performance.teacher_amp", f"one of {', '.join(AMP_MODES)}")
        fraction = self.gpu_memory_fraction
        check_config(fraction is None or 0 < fraction <= 1, "performance.gpu_memory_fraction",
                     "null (no cap) or the student's share of its GPU in (0, 1], e.g. 0.25 for --student-gpus 0.25")
        return self


AMP_MODES: tuple[str, ...] = ("off", "bf16", "fp16")


@dataclass
class OdistConfig:
    """Everything a run needs; printed into every run's outputs."""

    classes: tuple[str, ...] = DEFAULT_CLASSES
    device: str = "cpu"
    threads: int = 0
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    cost_model: CostModelConfig = field(default_factory=CostModelConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)

    def validate(self) -> OdistConfig:
        """Check every value, each section by its own ``validate``; return self so calls chain. The one place a
        config is checked: ``load_config``, ``with_overrides`` and ``config_from_dict`` all end here."""
        check_config(len(self.classes) >= 2 and self.classes[0] == "background", "classes",
                     "a list starting with 'background' and naming at least one other class")
        check_config(len(set(self.classes)) == len(self.classes), "classes", "distinct names")
        check_config(len(self.classes) <= 255, "classes", "at most 255 classes (labels are uint8)")
        check_config(self.device == "cpu" or self.device.startswith("cuda"), "device", "'cpu' or 'cuda[:N]'")
        check_config(self.threads >= 0, "threads", "0 (torch default) or a positive thread count")
        self.student.validate()
        self.distill.validate()
        self.source.validate()
        self.teacher.validate(self.classes)
        for section in (self.cost_model, self.performance, self.fleet, self.pool, self.live, self.storage):
            section.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> OdistConfig:
    """Build a validated config from defaults, a file, the environment and ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_file(Path(path))
    environ = os.environ if environ is None else environ
    for name, value in sorted(environ.items()):
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX):].lower().replace("__", ".")
            set_dotted(data, key, parse_scalar(value), origin=f"environment variable {name}")
    apply_overrides(data, overrides or [])
    return config_from_dict(data)


def choice_overrides(teacher: str | None = None, device: str | None = None) -> list[str]:
    """The overrides that a ``--teacher`` / ``--device`` choice (or a stream's replay teacher) stands for; the one
    place they are spelled as config keys."""
    return [*([] if teacher is None else [f"teacher.name={teacher}"]),
            *([] if device is None else [f"device={device}"])]


def with_overrides(base: OdistConfig, overrides: list[str]) -> OdistConfig:
    """``base`` with ``section.key=value`` overrides applied, validated (e.g. one stream's own settings).

    When the overrides change the class list but not the class groups, the groups follow the new classes.
    """
    if not overrides:
        return base
    data = base.to_dict()
    apply_overrides(data, overrides)
    if tuple(data["classes"]) != base.classes and data["teacher"]["class_groups"] == base.teacher.class_groups:
        del data["teacher"]["class_groups"]
    return config_from_dict(data)


def config_from_dict(data: Mapping[str, Any]) -> OdistConfig:
    """Build and validate a config from nested plain data (as written into run outputs).

    Default class groups follow the stream's classes: groups of classes it lacks are dropped.
    """
    config = build(OdistConfig, _moved_keys(data), "")
    if "class_groups" not in (data.get("teacher") or {}):
        groups = config.teacher.class_groups
        config.teacher.class_groups = {k: v for k, v in groups.items() if k in config.classes}
    return config.validate()


def _moved_keys(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with the keys that moved where they are now: ``live.fps``, ``live.width`` and ``live.height`` (as
    earlier versions wrote them into every run's outputs, or a user into a file or an override) are ``source.*``."""
    live = data.get("live")
    moved = {key: live[key] for key in ("fps", "width", "height") if key in live} if isinstance(live, Mapping) else {}
    if not moved:
        return data
    live = {key: value for key, value in live.items() if key not in moved}
    return {**data, "live": live, "source": {**(data.get("source") or {}), **moved}}
