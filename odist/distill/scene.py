"""Scene signatures: a cheap per-frame fingerprint to tell a cut (or a new view) from a frame of the same scene.

A signature is a small thumbnail (box-filtered to ``SIGNATURE_SIZE``) with each colour channel divided by
its own mean, so a global change of brightness or tint (lighting drift, auto exposure, a colour grade that
drifts) leaves it unchanged. The distance of two signatures is the median over thumbnail cells of the
mean absolute difference of their normalised colours: objects moving through part of the view change a
minority of cells and leave the median low; a cut changes most cells and moves it far.

``jump_distance`` compares two consecutive frames' signatures the same way after the best small shift
of one against the other (up to ``MAX_SHIFT`` cells either way), so a pan, a tilt or a shaking camera,
which moves the whole view a little between frames, does not look like a new scene.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIGNATURE_SIZE = (32, 18)  # (width, height) of the thumbnail
MAX_SHIFT = 2  # cells a view may move between consecutive frames (1/16 of the width, 1/9 of the height)


def scene_signature(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 frame -> (18, 32, 3) float32 thumbnail with unit channel means."""
    thumb = np.asarray(Image.fromarray(image).resize(SIGNATURE_SIZE, Image.Resampling.BOX), np.float32)
    means = thumb.reshape(-1, 3).mean(axis=0)
    return thumb / np.maximum(means, 1.0)


def scene_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median over cells of the mean absolute channel difference of two signatures (0 = same scene)."""
    return float(np.median(np.abs(a - b).mean(axis=-1)))


def jump_distance(current: np.ndarray, previous: np.ndarray, max_shift: int = MAX_SHIFT) -> float:
    """``scene_distance`` of two signatures over their overlap, at the shift of up to ``max_shift`` cells
    (each axis) that brings them closest: how far ``current`` is from ``previous`` once camera motion is
    taken out."""
    h, w = current.shape[:2]
    best = np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            a = current[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
            b = previous[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            best = min(best, float(np.median(np.abs(a - b).mean(axis=-1))))
    return best
