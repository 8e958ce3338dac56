"""Confusion-matrix IoU, accumulated over a stream (PAPER.md: TP/FP/FN per class over all frames)."""

from __future__ import annotations

import numpy as np
import torch


def confusion(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = target class, columns = predicted class."""
    p = _tensor(pred).reshape(-1).long()
    t = _tensor(target).reshape(-1).long().to(p.device)
    if p.numel() != t.numel():
        raise ValueError(f"prediction has {p.numel()} pixels but target has {t.numel()}")
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def _tensor(values: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(values, np.ndarray) and not values.flags.writeable:
        values = values.copy()  # labels from Ray's object store are read-only, which torch warns about
    return torch.as_tensor(values)


def class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for a class that is neither in the target nor predicted."""
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def min_class_iou(matrix: np.ndarray, min_pixels: int = 0) -> float:
    """The paper's keyframe accuracy: the lowest IoU over classes present (background included).

    With ``min_pixels`` a class counts only where the reference or the prediction has at least that
    many of its pixels, so a sliver of a class (a far-away person) cannot hold the score at zero.
    """
    ious = class_iou(matrix)
    large = np.maximum(matrix.sum(0), matrix.sum(1)) >= max(min_pixels, 1)
    present = ious[~np.isnan(ious) & large]
    return float(present.min()) if present.size else 1.0


def mean_iou(matrix: np.ndarray, *, include_background: bool = True) -> float:
    """Mean IoU over the classes that occur in the reference labels; NaN when none does.

    A class the reference never contains is left out of the mean (its false positives still cost
    the classes whose pixels they took), so a stream is scored on the classes it actually has.
    """
    ious = class_iou(matrix)
    present = matrix.sum(1) > 0
    if not include_background:
        ious, present = ious[1:], present[1:]
    chosen = ious[present]
    return float(chosen.mean()) if chosen.size else float("nan")


class ConfusionMeter:
    """Streaming confusion matrix of a whole stream."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, matrix: np.ndarray) -> None:
        self.matrix += matrix

    def miou(self, include_background: bool = True) -> float:
        return mean_iou(self.matrix, include_background=include_background)
