"""The arithmetic of a plan: student GPU shares, teacher replicas and GPUs for N cameras at F frames/s.

Students. A camera's student runs inference on every frame and ``updates_per_frame`` SGD updates on
average, so it needs ``fps * (inference_ms + updates_per_frame * update_ms) / 1000`` GPU-seconds per
second (student costs scale with the frame's pixels). A GPU holds as many students as the least of: its
compute (with ``headroom``), its memory, and ``1 / --student-gpus`` (the share Ray reserves per student).
Students are sized for the average rate: a camera in a hard stretch (a keyframe every shortest stride)
needs more for a while and runs slower than real time meanwhile; the plan shows by how much.

Teacher. The pool labels ``cameras * fps * keyframe_rate`` frames/s; a replica labels
``batch / (teacher_ms * (1 + marginal * (batch - 1)))`` frames/s when its batches fill, which they do
under load. Replicas: enough for the expected rate (min) and for the peak rate (max), with ``headroom``;
each takes one whole GPU.

Memory model (estimates): a student process takes 0.5 GB (CUDA context, weights, optimiser state) plus
1.0 GB of activations for an update at 1280x720, scaled by pixels; a teacher replica 1.0 GB plus 0.5 GB
per frame of its batch (features and masks pasted at full resolution); 90% of a GPU's memory is usable.
Fitting students by memory also keeps each within its share of the GPU's memory, at which a fleet worker
caps its allocations (``performance.gpu_memory_fraction``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from odist.errors import ConfigError
from odist.plan.profiles import GpuProfile
from odist.plan.workload import Workload

DEFAULT_STUDENT_GPUS = 0.125  # eight students per GPU, as in `odist run --student-gpus 0.125`
DEFAULT_TEACHER_GPUS = 1.0  # a teacher replica takes a whole GPU
DEFAULT_TEACHER_BATCH = 8  # TeacherPoolConfig.max_batch_size and `odist run --teacher-batch`
DEFAULT_HEADROOM = 1.25  # plan for 80% utilisation
STUDENT_FIXED_GB = 0.5
STUDENT_ACTIVATIONS_GB = 1.0  # per update at 1280x720
TEACHER_FIXED_GB = 1.0
TEACHER_PER_FRAME_GB = 0.5
USABLE_MEMORY = 0.9
MAX_STUDENTS_PER_GPU = 64
SHARE_QUANTUM = 10_000  # Ray counts fractional resources in units of 1/10000


@dataclass(frozen=True)
class PlanRequest:
    """What to plan for: the cameras, their frame rate and size, the GPU type and the knobs."""

    cameras: int
    fps: float
    gpu: str
    width: int = 1280
    height: int = 720
    student_gpus: float = DEFAULT_STUDENT_GPUS
    teacher_batch: int = DEFAULT_TEACHER_BATCH
    headroom: float = DEFAULT_HEADROOM
    gpus_per_node: int = 1

    def validate(self) -> PlanRequest:
        """Check every number (a ``ConfigError`` names the flag); return self."""
        _check(self.cameras >= 1, f"--cameras {self.cameras}", "pass 1 or more cameras")
        _check(math.isfinite(self.fps) and self.fps > 0, f"--fps {self.fps:g}", "pass a positive frame rate")
        _check(self.width >= 16 and self.height >= 16, f"--resolution {self.width}x{self.height}",
               "pass WIDTHxHEIGHT of at least 16x16, e.g. 1280x720")
        _check(1 / MAX_STUDENTS_PER_GPU <= self.student_gpus <= 1, f"--student-gpus {self.student_gpus:g}",
               f"pass a GPU share from 1/{MAX_STUDENTS_PER_GPU} to 1, e.g. 0.125 for eight students per GPU")
        _check(self.teacher_batch >= 1, f"--teacher-batch {self.teacher_batch}", "pass a batch of 1 or more")
        _check(math.isfinite(self.headroom) and self.headroom >= 1, f"--headroom {self.headroom:g}",
               "pass 1 or more (1.25 plans for 80% utilisation)")
        _check(self.gpus_per_node >= 1, f"--gpus-per-node {self.gpus_per_node}", "pass 1 or more")
        return self


def _check(ok: bool, what: str, fix: str) -> None:
    if not ok:
        raise ConfigError(f"{what} is out of range", fix)


@dataclass(frozen=True)
class StudentPlan:
    """The students' side: cost per camera, how many fit on a GPU and why, their share and GPUs."""

    inference_ms: float
    update_ms: float
    ms_per_frame: float
    gpu_seconds_per_second: float  # per camera
    peak_gpu_seconds_per_second: float  # per camera, at the peak keyframe rate (not planned for)
    total_gpu_seconds_per_second: float
    memory_gb: float
    fit_compute: int
    fit_memory: int
    fit_share: int
    per_gpu: int
    limited_by: str
    share: float  # the --student-gpus to use
    gpus: int


@dataclass(frozen=True)
class TeacherPlan:
    """The teacher pool's side: frames to label, a replica's throughput, replicas and their memory."""

    frames_per_second: float
    peak_frames_per_second: float
    replica_frames_per_second: float
    batch: int
    memory_gb: float
    min_replicas: int
    max_replicas: int
    gpus_per_replica: float = DEFAULT_TEACHER_GPUS


@dataclass(frozen=True)
class Plan:
    """A whole plan: the request, the profile and workload it used, both sides, and the totals."""

    request: PlanRequest
    profile: GpuProfile
    workload: Workload
    students: StudentPlan
    teacher: TeacherPlan
    notes: list[str] = field(default_factory=list)

    @property
    def min_gpus(self) -> int:
        return self.students.gpus + math.ceil(self.teacher.min_replicas * self.teacher.gpus_per_replica)

    @property
    def max_gpus(self) -> int:
        return self.students.gpus + math.ceil(self.teacher.max_replicas * self.teacher.gpus_per_replica)

    @property
    def min_nodes(self) -> int:
        return math.ceil(self.min_gpus / self.request.gpus_per_node)

    @property
    def max_nodes(self) -> int:
        return math.ceil(self.max_gpus / self.request.gpus_per_node)

    def values(self) -> dict[str, Any]:
        """The settings to deploy with: ``odist run`` flags, KubeRay group and ``ray up`` worker counts."""
        return {
            "odist_run": {"--workers": self.request.cameras, "--student-gpus": self.students.share,
                          "--teacher-replicas": f"{self.teacher.min_replicas}:{self.teacher.max_replicas}",
                          "--teacher-gpus": self.teacher.gpus_per_replica, "--teacher-batch": self.teacher.batch,
                          "--device": "cuda"},
            "kuberay_gpu_group": {"minReplicas": self.min_nodes, "maxReplicas": self.max_nodes,
                                  "nvidia.com/gpu": self.request.gpus_per_node},
            "ray_up_gpu_workers": {"min_workers": self.min_nodes, "max_workers": self.max_nodes},
        }

    def run_flags(self) -> str:
        """The ``odist run`` flags as one command-line fragment."""
        return " ".join(f"{key} {_flag_value(value)}" for key, value in self.values()["odist_run"].items())

    def to_dict(self) -> dict[str, Any]:
        return {"request": dataclasses.asdict(self.request), "profile": self.profile.to_dict(),
                "workload": self.workload.to_dict(), "students": dataclasses.asdict(self.students),
                "teacher": dataclasses.asdict(self.teacher),
                "gpus": {"min": self.min_gpus, "max": self.max_gpus},
                "nodes": {"min": self.min_nodes, "max": self.max_nodes}, "values": self.values(),
                "notes": list(self.notes)}


def _flag_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def make_plan(request: PlanRequest, profile: GpuProfile, workload: Workload) -> Plan:
    """Plan ``request`` on ``profile``'s GPU type for ``workload``."""
    request.validate()
    students = plan_students(request, profile, workload)
    teacher = plan_teacher(request, profile, workload)
    return Plan(request, profile, workload, students, teacher, _notes(request, profile, students))


def plan_students(request: PlanRequest, profile: GpuProfile, workload: Workload) -> StudentPlan:
    """Student cost per camera and how many students each GPU holds."""
    pixels = (request.width * request.height) / (profile.frame_width * profile.frame_height)
    inference_ms, update_ms = profile.student_inference_ms * pixels, profile.student_update_ms * pixels
    ms_per_frame = inference_ms + workload.updates_per_frame * update_ms
    per_camera = request.fps * ms_per_frame / 1000.0
    peak_updates = workload.peak_keyframe_rate * workload.updates_per_keyframe
    peak_per_camera = request.fps * (inference_ms + peak_updates * update_ms) / 1000.0
    memory_gb = STUDENT_FIXED_GB + STUDENT_ACTIVATIONS_GB * request.width * request.height / (1280 * 720)
    fits = {"compute": math.floor(1.0 / (per_camera * request.headroom) + 1e-9),
            "memory": math.floor(profile.memory_gb * USABLE_MEMORY / memory_gb + 1e-9),
            "share": math.floor(1.0 / request.student_gpus + 1e-9)}
    if fits["compute"] < 1:
        raise ConfigError(
            f"one camera at {request.fps:g} frames/s, {request.width}x{request.height}, needs "
            f"{per_camera * request.headroom:.2f} GPU-seconds per second on {profile.label} (with headroom "
            f"{request.headroom:g}), more than one GPU",
            "lower --fps or --resolution, or pick a faster --gpu")
    if fits["memory"] < 1:
        raise ConfigError(f"a student at {request.width}x{request.height} needs about {memory_gb:.1f} GB, more "
                          f"than {profile.label} has", "lower --resolution or pick a GPU with more memory")
    per_gpu = min(fits.values())
    limited_by = min(fits, key=lambda name: (fits[name], name != "share"))
    share = request.student_gpus if per_gpu == fits["share"] else _share_for(per_gpu)
    return StudentPlan(inference_ms=inference_ms, update_ms=update_ms, ms_per_frame=ms_per_frame,
                       gpu_seconds_per_second=per_camera, peak_gpu_seconds_per_second=peak_per_camera,
                       total_gpu_seconds_per_second=per_camera * request.cameras,
                       memory_gb=memory_gb, fit_compute=fits["compute"], fit_memory=fits["memory"],
                       fit_share=fits["share"], per_gpu=per_gpu, limited_by=limited_by, share=share,
                       gpus=math.ceil(request.cameras / per_gpu))


def _share_for(per_gpu: int) -> float:
    """The largest GPU share (in Ray's 1/10000 units) of which exactly ``per_gpu`` fit on one GPU."""
    return math.floor(SHARE_QUANTUM / per_gpu) / SHARE_QUANTUM


def replica_throughput(profile: GpuProfile, batch: int) -> float:
    """Frames per second one teacher replica labels with full batches of ``batch``."""
    seconds = profile.teacher_ms / 1000.0 * (1 + profile.teacher_batch_marginal * (batch - 1))
    return batch / seconds


def plan_teacher(request: PlanRequest, profile: GpuProfile, workload: Workload) -> TeacherPlan:
    """Keyframes per second to label and the replicas (min for the expected rate, max for the peak)."""
    frames = request.cameras * request.fps * workload.keyframe_rate
    peak = request.cameras * request.fps * workload.peak_keyframe_rate
    memory_gb = TEACHER_FIXED_GB + TEACHER_PER_FRAME_GB * request.teacher_batch
    if memory_gb > profile.memory_gb * USABLE_MEMORY:
        raise ConfigError(f"a teacher batch of {request.teacher_batch} needs about {memory_gb:.1f} GB, more than "
                          f"{profile.label} has", "pass a smaller --teacher-batch")
    per_replica = replica_throughput(profile, request.teacher_batch)
    low = max(1, math.ceil(frames * request.headroom / per_replica - 1e-9))
    high = max(low, math.ceil(peak * request.headroom / per_replica - 1e-9))
    return TeacherPlan(frames_per_second=frames, peak_frames_per_second=peak, replica_frames_per_second=per_replica,
                       batch=request.teacher_batch, memory_gb=memory_gb, min_replicas=low, max_replicas=high)


def _notes(request: PlanRequest, profile: GpuProfile, students: StudentPlan) -> list[str]:
    notes = []
    if students.per_gpu < students.fit_share:
        notes.append(f"--student-gpus {request.student_gpus:g} would put {students.fit_share} students on a GPU, "
                     f"but its {students.limited_by} holds {students.per_gpu}: use --student-gpus {students.share:g}")
    if not profile.measured:
        notes.append(f"{profile.name} costs are estimates; measure them with python bench/frame_cost.py "
                     f"--device cuda --out bench/results/gpu_{profile.name}.json")
    return notes
