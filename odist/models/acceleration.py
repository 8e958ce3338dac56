"""GPU efficiency helpers behind the ``performance`` config section.

Autocast, channels_last, pinned uploads, ``torch.compile`` and the student's GPU memory share. Every
switch resolves against the device once (``Acceleration.resolve``): a switch the device cannot use
falls back to its off state and logs why, once per process and reason, so CPU runs stay safe with any
setting.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from odist.config import PerformanceConfig
from odist.errors import ConfigError

logger = logging.getLogger("odist.performance")

AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}
GIB = 1024**3
# Frame side of the probe forward pass that measures a model's activations per pixel.
_PROBE_SIDE = 128
# cuDNN workspaces, the upload and allocator fragmentation: added to every estimate.
_ESTIMATE_SLACK_BYTES = 256 * 1024**2
_noticed: set[str] = set()


class GpuMemoryShareError(ConfigError):
    """The student's share of its GPU is too small for what it needs."""


def notice_once(message: str) -> None:
    """Log ``message`` as a warning the first time this process sees it."""
    if message not in _noticed:
        _noticed.add(message)
        logger.warning(message)


# -- resolving the switches ------------------------------------------------------------------------


@dataclass(frozen=True)
class Acceleration:
    """The ``performance`` switches as they apply on one device (after any fallback)."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    pinned_uploads: bool = False
    compile: bool = False

    @classmethod
    def resolve(cls, config: PerformanceConfig, device: torch.device | str) -> Acceleration:
        """The switches of ``config`` that ``device`` can use; the others are off (and logged once)."""
        device = torch.device(device)
        return cls(device, resolve_amp(config.amp, device), config.channels_last,
                   resolve_pinned(config.pinned_uploads, device), config.compile)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of these switches (a no-op when amp is off)."""
        return autocast(self.device, self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for fp16 (bf16 and fp32 keep float32's range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)


def resolve_amp(mode: str, device: torch.device, key: str = "performance.amp") -> torch.dtype | None:
    """The autocast dtype for ``mode`` ("off", "bf16", "fp16") on ``device``, or None (off)."""
    if mode == "off":
        return None
    dtype = AMP_DTYPES[mode]
    if device.type == "cuda":
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            notice_once(f"{key}=bf16 is off: this GPU has no bfloat16 support (use {key}=fp16)")
            return None
        return dtype
    if dtype == torch.float16:
        notice_once(f"{key}=fp16 is off on device {device}: fp16 autocast is for CUDA GPUs (bf16 runs on the CPU)")
        return None
    if not _cpu_bf16_works():
        notice_once(f"{key}=bf16 is off: this CPU's torch cannot run a bf16 convolution under autocast")
        return None
    return dtype


def _cpu_bf16_works() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = nn.functional.conv2d(torch.ones(1, 3, 4, 4), torch.ones(2, 3, 3, 3))
        return out.dtype == torch.bfloat16
    except (RuntimeError, NotImplementedError):
        return False


def resolve_pinned(pinned: bool, device: torch.device) -> bool:
    """Whether to pin host frames: only for CUDA devices with CUDA available."""
    if pinned and (device.type != "cuda" or not torch.cuda.is_available()):
        notice_once(f"performance.pinned_uploads is off on device {device}: page-locked uploads need a CUDA GPU")
        return False
    return pinned


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` in ``dtype``; a no-op context for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# -- memory format and uploads ---------------------------------------------------------------------


def to_channels_last(x: nn.Module | torch.Tensor) -> nn.Module | torch.Tensor:
    """A module converted in place, or a 4-D tensor copied, to channels_last (other tensors as they are)."""
    if isinstance(x, nn.Module):
        return x.to(memory_format=torch.channels_last)
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def upload(array: np.ndarray, device: torch.device, pinned: bool = False) -> torch.Tensor:
    """``array`` as a tensor on ``device``; ``pinned`` stages it in page-locked memory for an async copy."""
    x = torch.from_numpy(np.ascontiguousarray(array))
    if pinned and device.type == "cuda":
        x = x.pin_memory()
    return x.to(device, non_blocking=True)


# -- torch.compile ---------------------------------------------------------------------------------


class CompiledForward:
    """Calls ``torch.compile(model)``; on a compile failure warns once and runs ``model`` eagerly from then on.

    ``torch.compile`` compiles lazily, so failures (a missing compiler, an unsupported op) surface on a
    call; a CUDA out-of-memory error is not a compile failure and is raised as it is.
    """

    def __init__(self, model: nn.Module, compiled: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        self.model = model
        self.compiled = compiled

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(x)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:
                self._fall_back(exc)
        return self.model(x)

    def _fall_back(self, exc: Exception) -> None:
        self.compiled = None
        message = (f"performance.compile: torch.compile of the student failed ({type(exc).__name__}: "
                   f"{str(exc).splitlines()[0] if str(exc) else ''}); running eagerly instead "
                   "(set performance.compile=false to skip compiling)")
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        notice_once(message)


def compile_forward(model: nn.Module, enabled: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s forward, compiled when ``enabled`` (with the eager fallback of ``CompiledForward``)."""
    if not enabled:
        return model
    try:
        compiled = torch.compile(model)
    except Exception as exc:  # e.g. an unsupported Python or platform
        forward = CompiledForward(model, None)
        forward._fall_back(exc)
        return forward
    return CompiledForward(model, compiled)


# -- GPU memory share ------------------------------------------------------------------------------


def activation_elements_per_pixel(model: nn.Module, device: torch.device) -> float:
    """Elements of every leaf module's output per input pixel, from one probe forward pass.

    Roughly what a training step keeps for the backward pass, per frame pixel. The probe runs in eval
    mode without gradients, so it changes no BatchNorm statistics.
    """
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, _PROBE_SIDE, _PROBE_SIDE, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total / (_PROBE_SIDE * _PROBE_SIDE)


def student_bytes_estimate(model: nn.Module, optimizer_slots: int, pixels: int = 0, batch: int = 1,
                           elements_per_pixel: float = 0.0, amp: bool = False) -> int:
    """Bytes a student needs: weights, gradients and ``optimizer_slots`` states, plus activations.

    Activations are ``elements_per_pixel`` (see ``activation_elements_per_pixel``) x ``pixels`` (of the
    student's input) x ``batch``, in 2 bytes under autocast and 4 without; a fixed slack covers
    workspaces and fragmentation. An estimate, not a bound.
    """
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    activations = elements_per_pixel * pixels * batch * (2 if amp else 4)
    return int(weights * (2 + optimizer_slots) + activations + _ESTIMATE_SLACK_BYTES)


def check_gpu_memory_share(device: torch.device | str, fraction: float, needed_bytes_estimate: int,
                           total_bytes: int | None = None, what: str = "the student") -> None:
    """Raise ``GpuMemoryShareError`` when ``fraction`` of the device's memory is below the estimate.

    ``total_bytes`` defaults to the CUDA device's total memory.
    """
    device = torch.device(device)
    if total_bytes is None:
        total_bytes = torch.cuda.get_device_properties(device).total_memory
    share = fraction * total_bytes
    if needed_bytes_estimate > share:
        raise GpuMemoryShareError(
            f"{what} needs about {needed_bytes_estimate / GIB:.2f} GiB of GPU memory but "
            f"performance.gpu_memory_fraction={fraction:g} of {device} ({total_bytes / GIB:.1f} GiB in total) "
            f"gives it {share / GIB:.2f} GiB",
            "raise --student-gpus (or performance.gpu_memory_fraction), or lower the resolution "
            "(student.input_scale, or smaller frames)")


def limit_gpu_memory(device: torch.device | str, fraction: float) -> bool:
    """Cap this process's CUDA allocations on ``device`` at ``fraction`` of its memory, so a student that
    outgrows its share runs out of memory alone, not its neighbours. False where torch cannot cap it."""
    setter = getattr(torch.cuda, "set_per_process_memory_fraction", None)
    if setter is None:
        notice_once("performance.gpu_memory_fraction: this torch cannot cap a process's GPU memory")
        return False
    try:
        setter(fraction, torch.device(device))
    except (RuntimeError, ValueError) as exc:  # e.g. the cudaMallocAsync allocator
        notice_once(f"performance.gpu_memory_fraction: cannot cap GPU memory on {device} ({exc})")
        return False
    return True


def device_time(device: torch.device) -> float:
    """A clock reading after ``device``'s queued work is done (what update and inference times use)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class StudentMemory:
    """Checks a student's GPU share against its estimated needs, once per frame size.

    Size (0, 0), at construction, counts weights, gradients and optimiser state only; a frame size adds
    the activations of an update batch (the keyframe plus its replay samples).
    """

    def __init__(self, student: torch.nn.Module, device: torch.device, amp: bool) -> None:
        self.student, self.device, self.amp = student, device, amp
        self._checked: set[tuple[int, int]] = set()
        self._activations_per_pixel: float | None = None

    def check(self, fraction: float, height: int, width: int, input_scale: float, optimizer_slots: int,
              batch: int) -> None:
        """``GpuMemoryShareError`` when ``fraction`` of the GPU cannot hold the student at this frame size."""
        if (height, width) in self._checked:
            return
        self._checked.add((height, width))
        pixels = round(height * input_scale) * round(width * input_scale)
        if pixels and self._activations_per_pixel is None:
            self._activations_per_pixel = activation_elements_per_pixel(self.student, self.device)
        needed = student_bytes_estimate(self.student, optimizer_slots, pixels, batch,
                                        self._activations_per_pixel or 0.0, self.amp)
        check_gpu_memory_share(self.device, fraction, needed)
