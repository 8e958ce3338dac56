"""What a class map says about the scene, per class: how much of the frame it covers and how many objects.

Each frame record keeps, indexed by class id, the fraction of the frame's pixels of each class
(``class_pixels``) and the number of connected regions of each class (``class_regions``, 8-connected, regions
smaller than ``1 / MIN_REGION_DIVISOR`` of the frame ignored as specks), so that "how many people were where,
and when" is a query over records rather than a decode of every mask. Keyframes carry the teacher's too.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MIN_REGION_DIVISOR = 4096  # a region must cover at least 1/4096 of the frame (56 pixels at 640x360) to count
_EIGHT_CONNECTED = np.ones((3, 3), bool)


def class_pixels(classes: np.ndarray, num_classes: int) -> list[float]:
    """The fraction of the (H, W) class map's pixels of each class id ``0 .. num_classes - 1``."""
    counts = np.bincount(classes.ravel(), minlength=num_classes)[:num_classes]
    return (counts / max(classes.size, 1)).astype(np.float32).tolist()


def class_regions(classes: np.ndarray, num_classes: int) -> list[int]:
    """The number of connected regions of each class id (background, id 0, counts as 0), specks ignored."""
    smallest = max(1, classes.size // MIN_REGION_DIVISOR)
    regions = [0]
    for class_id in range(1, num_classes):
        labelled, found = ndimage.label(classes == class_id, structure=_EIGHT_CONNECTED)
        if found:
            sizes = np.bincount(labelled.ravel())[1:]
            found = int((sizes >= smallest).sum())
        regions.append(int(found))
    return regions
