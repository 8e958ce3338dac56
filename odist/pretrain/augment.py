"""Standard augmentation of a training batch: horizontal flip, scale and crop, colour jitter.

Every random draw comes from the caller's ``torch.Generator``, so an epoch seeded the same way sees the
same batches (a resumed pretrain repeats exactly what an uninterrupted one does).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Flip with probability ``flip``; zoom by up to ``max_scale`` and crop back; jitter brightness, contrast
    and saturation by up to ``jitter`` (a factor in ``1 +- jitter``)."""

    flip: float = 0.5
    max_scale: float = 1.3
    jitter: float = 0.2

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Augment (B, 3, H, W) images in 0..1, their (B, H, W) long targets and float loss weights."""
        out = [self._one(images[i], targets[i], weights[i], generator) for i in range(images.shape[0])]
        return (torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out]),
                torch.stack([o[2] for o in out]))

    def _one(self, image: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
             g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u = torch.rand(7, generator=g).tolist()
        if u[0] < self.flip:
            image, target, weight = image.flip(-1), target.flip(-1), weight.flip(-1)
        image, target, weight = self._scale_and_crop(image, target, weight, u[1], u[2], u[3])
        return self._jitter(image, u[4], u[5], u[6]), target, weight

    def _scale_and_crop(self, image: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, s: float,
                        dy: float, dx: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = 1.0 + s * (self.max_scale - 1.0)
        h, w = target.shape
        sh, sw = round(h * scale), round(w * scale)
        if (sh, sw) == (h, w):
            return image, target, weight
        top, left = int(dy * (sh - h + 1)), int(dx * (sw - w + 1))
        crop = (slice(top, top + h), slice(left, left + w))
        image = F.interpolate(image[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        maps = F.interpolate(torch.stack([target.float(), weight])[None], size=(sh, sw), mode="nearest")[0]
        return image[:, crop[0], crop[1]], maps[0][crop].long(), maps[1][crop]

    def _jitter(self, image: torch.Tensor, b: float, c: float, s: float) -> torch.Tensor:
        def factor(u: float) -> float:
            return 1.0 + (2 * u - 1) * self.jitter

        image = image * factor(b)
        mean = image.mean()
        image = (image - mean) * factor(c) + mean
        gray = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
        image = (image - gray) * factor(s) + gray
        return image.clamp(0.0, 1.0)
