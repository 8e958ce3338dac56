"""Instance detections -> one dense class map, as the paper turns Mask R-CNN output into labels."""

from __future__ import annotations

import numpy as np
import torch

from odist.models.teachers.base import Labels

Array = np.ndarray | torch.Tensor


def detections_to_labels(
    scores: Array,
    coco_ids: Array,
    boxes: Array,
    masks: Array,
    lookup: np.ndarray,
    size: tuple[int, int],
    score_threshold: float,
    mask_threshold: float,
) -> Labels:
    """Paint the confident detections of stream classes into an HxW uint8 class map.

    ``scores`` (N,), ``coco_ids`` (N,) torchvision COCO label ids, ``boxes`` (N, 4) ``x0, y0, x1, y1``
    and ``masks`` (N, H, W) or (N, 1, H, W) per-pixel probabilities (or booleans) at the frame's
    ``size = (H, W)``; ``lookup`` maps COCO ids to stream class ids (``coco.class_map``).

    A detection is kept when ``score >= score_threshold`` and its category maps to a stream class;
    its mask covers the pixels with ``probability >= mask_threshold``. Kept detections are painted in
    ascending score order, so where masks overlap the highest-scoring detection wins (ties: the later
    detection in input order). ``boxes`` of the result are the kept detections, in input order, as
    ``class_id, x0, y0, x1, y1`` clipped to the frame; every kept detection contributes its box even
    when its binarized mask is empty, since the box still marks a likely object.
    """
    height, width = size
    if tuple(masks.shape[-2:]) != (height, width):
        raise ValueError(f"masks are {tuple(masks.shape[-2:])}, expected the frame size {(height, width)}")
    score_np = _numpy(scores).astype(np.float32).reshape(-1)
    class_np = lookup[_numpy(coco_ids).astype(np.int64).reshape(-1)]
    keep = np.flatnonzero((score_np >= score_threshold) & (class_np > 0))

    classes = np.zeros((height, width), dtype=np.uint8)
    binary = _binary_masks(masks, keep, mask_threshold)
    for i in np.argsort(score_np[keep], kind="stable"):
        classes[binary[i]] = class_np[keep[i]]

    kept_boxes = _numpy(boxes).astype(np.float32).reshape(-1, 4)[keep]
    kept_boxes[:, 0::2] = kept_boxes[:, 0::2].clip(0, width)
    kept_boxes[:, 1::2] = kept_boxes[:, 1::2].clip(0, height)
    rows = np.concatenate([class_np[keep].astype(np.float32)[:, None], kept_boxes], axis=1)
    return Labels(classes=classes, boxes=rows)


def _numpy(x: Array) -> np.ndarray:
    """A numpy copy; half-precision tensors (from autocast) are widened to float32 first."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def _binary_masks(masks: Array, keep: np.ndarray, threshold: float) -> np.ndarray:
    """(K, H, W) bool masks of the kept detections, thresholded where they live (GPU masks stay there)."""
    height, width = masks.shape[-2:]
    if isinstance(masks, torch.Tensor):
        picked = masks.reshape(-1, height, width)[torch.as_tensor(keep, device=masks.device)]
        binary = picked if picked.dtype == torch.bool else picked >= threshold
        return binary.cpu().numpy()
    picked_np = np.asarray(masks).reshape(-1, height, width)[keep]
    return picked_np if picked_np.dtype == np.bool_ else picked_np >= threshold
