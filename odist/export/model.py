"""The student as a self-contained inference model: raw RGB frames in, logits and class maps out.

``DeployedStudent`` wraps a stream's JITNet so that everything odist does around the network at inference
(``OnlineDistiller._to_tensor`` and ``_logits``) happens inside the exported graph: the division by 255 and
the ImageNet mean/std normalisation, the ``student.input_scale`` downscale and the resize of the logits back
to the frame, then the class map (the arg-max over classes). A consumer feeds float32 RGB frames in 0..255.

With ``student.batch_stats_at_inference`` (the default) JITNet's BatchNorm layers normalise with the current
frame's statistics, never running averages. A BatchNorm in that mode computes statistics over the whole
batch, which exporters turn into a training-mode op (or a graph whose output for one frame depends on the
others in its batch). ``FrameNorm`` replaces each such layer with the same arithmetic per frame (the mean and
biased variance over the frame's pixels, then the layer's affine), so the exported model reproduces odist's
one-frame-at-a-time inference for every frame of any batch.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from odist.distill.learning import IMAGE_MEAN, IMAGE_STD, class_map
from odist.models.jitnet import JITNet


class FrameNorm(nn.Module):
    """A BatchNorm without running statistics, applied to each frame of a batch on its own."""

    def __init__(self, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean((2, 3), keepdim=True)
        centred = x - mean
        variance = (centred * centred).mean((2, 3), keepdim=True)
        out = centred * torch.rsqrt(variance + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out


def per_frame_norms(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose BatchNorm layers without running statistics are ``FrameNorm``s."""
    module = copy.deepcopy(module)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d) and not child.track_running_stats:
                setattr(parent, name, FrameNorm(child))
            else:
                swap(child)

    swap(module)
    return module.eval()


class DeployedStudent(nn.Module):
    """``frames`` (N, 3, H, W) float32 RGB in 0..255 -> ``logits`` (N, C, H, W) float32 and ``classes``
    (N, H, W) uint8, as odist's distiller computes them for each frame."""

    def __init__(self, student: JITNet, input_scale: float = 1.0) -> None:
        super().__init__()
        self.student = per_frame_norms(student)
        self.input_scale = float(input_scale)
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (frames / 255 - self.mean) / self.std
        if self.input_scale != 1.0:
            x = F.interpolate(x, scale_factor=self.input_scale, mode="bilinear", antialias=True, align_corners=False)
        logits = self.student(x)
        if self.input_scale != 1.0:
            logits = F.interpolate(logits, size=frames.shape[-2:], mode="bilinear", align_corners=False)
        return logits, logits.argmax(1).to(torch.uint8)


def as_input(images: list[np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 RGB frames -> the exported model's (N, 3, H, W) float32 input."""
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)


def odist_logits(student: JITNet, image: np.ndarray, input_scale: float = 1.0) -> torch.Tensor:
    """(C, H, W) float32 logits of one (H, W, 3) uint8 RGB frame, computed the way the distiller infers a
    frame (``OnlineDistiller._to_tensor``, ``_logits`` and ``_infer``), on the CPU in float32."""
    student.eval()
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float().div_(255)
        x = (x - torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
        if input_scale != 1.0:
            x = F.interpolate(x, scale_factor=input_scale, mode="bilinear", antialias=True, align_corners=False)
        logits = student(x).float()
        if logits.shape[-2:] != image.shape[:2]:
            logits = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    return logits[0]


def odist_class_map(logits: torch.Tensor) -> np.ndarray:
    """The distiller's class map of (C, H, W) logits, as the uint8 mask odist stores."""
    return class_map(logits).to(torch.uint8).numpy()


def top_two_gap(logits: torch.Tensor) -> np.ndarray:
    """(H, W) margin between the best and second-best class logit: where it is ~0 the class is a numerical tie."""
    best = logits.topk(2, dim=0).values
    return (best[0] - best[1]).numpy()
