"""The distillation loss: per-pixel cross-entropy with foreground pixels weighed up (PAPER.md), plus an
optional soft-IoU term that aims at the keyframe test itself (the minimum per-class IoU)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def foreground_weights(
    boxes: np.ndarray, height: int, width: int, *, weight: float, dilation: float, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(H, W) float map: ``weight`` inside each teacher box grown by ``dilation`` of its size, else 1.

    Boxes are (N, 5) rows ``class_id, x0, y0, x1, y1`` in pixels of the label map.
    """
    weights = torch.ones(height, width, device=device)
    if weight == 1.0 or len(boxes) == 0:
        return weights
    for _, x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64):
        grow_x, grow_y = (x1 - x0) * dilation / 2, (y1 - y0) * dilation / 2
        left, top = max(0, int(np.floor(x0 - grow_x))), max(0, int(np.floor(y0 - grow_y)))
        right, bottom = min(width, int(np.ceil(x1 + grow_x))), min(height, int(np.ceil(y1 + grow_y)))
        if right > left and bottom > top:
            weights[top:bottom, left:right] = weight
    return weights


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - soft IoU (softmax probabilities as soft masks) over the classes the keyframe test counts.

    ``logits`` (B, C, H, W), ``target`` (B, H, W) long. Those classes are the ones in ``target`` or in the
    prediction (its arg max), as in the min per-class IoU: a class the teacher did not see but the student
    paints somewhere scores 0 there, and this term then pulls its probability down everywhere. Each class
    counts once however few pixels it covers, so small objects weigh as much as the background.
    """
    num_classes = logits.shape[1]
    probabilities = logits.softmax(1)
    truth = F.one_hot(target, num_classes).permute(0, 3, 1, 2).to(probabilities.dtype)
    dims = (0, 2, 3)
    intersection = (probabilities * truth).sum(dims)
    union = (probabilities + truth).sum(dims) - intersection
    with torch.no_grad():
        predicted = torch.bincount(logits.max(1).indices.flatten(), minlength=num_classes) > 0
    counted = (truth.sum(dims) > 0) | predicted
    return (1 - (intersection + 1) / (union + 1))[counted].mean()


def distillation_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                      iou_weight: float = 0.0) -> torch.Tensor:
    """Weighted mean cross-entropy (+ ``iou_weight`` x ``soft_iou_loss``).

    ``logits`` (B, C, H, W), ``target`` (B, H, W) long, ``weights`` (B, H, W).
    """
    per_pixel = F.cross_entropy(logits, target, reduction="none")
    loss = (per_pixel * weights).sum() / weights.sum()
    if iou_weight:
        loss = loss + iou_weight * soft_iou_loss(logits, target)
    return loss
