"""Drawing one overlay frame: class colours blended over the image, a legend and a status line."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# One colour per class id (background is left as it is); more classes cycle through the palette.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
)
ALPHA = 0.5  # weight of the class colour where a mask paints a class


def class_colour(class_id: int) -> tuple[int, int, int]:
    return PALETTE[1 + (class_id - 1) % (len(PALETTE) - 1)] if class_id > 0 else PALETTE[0]


def blend(image: np.ndarray, mask: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """(H, W, 3) uint8 image with every non-background pixel of ``mask`` mixed with its class colour."""
    if image.shape[:2] != mask.shape:
        raise ValueError(f"mask is {mask.shape}, image is {image.shape[:2]}")
    lut = np.asarray([class_colour(c) for c in range(256)], np.float32)
    out = image.astype(np.float32)
    painted = mask > 0
    out[painted] = (1 - alpha) * out[painted] + alpha * lut[mask[painted]]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def annotate(image: np.ndarray, class_names: Sequence[str], line: str, title: str | None = None) -> np.ndarray:
    """Draw the legend (one swatch per foreground class) at the top left, ``title`` at the top right and
    ``line`` along the bottom, each on a dark box so it reads on any footage."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    y = 2
    for class_id, name in enumerate(class_names[1:], start=1):
        box = draw.textbbox((14, y), name, font=font)
        draw.rectangle((0, y - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
        draw.rectangle((2, y + 1, 11, y + 9), fill=class_colour(class_id))
        draw.text((14, y), name, fill=(255, 255, 255), font=font)
        y = box[3] + 3
    if title:
        box = draw.textbbox((0, 0), title, font=font)
        x = image.shape[1] - (box[2] - box[0]) - 4
        draw.rectangle((x - 2, 0, image.shape[1], box[3] + 3), fill=(0, 0, 0))
        draw.text((x, 1), title, fill=(255, 255, 255), font=font)
    box = draw.textbbox((0, 0), line, font=font)
    top = image.shape[0] - (box[3] - box[1]) - 5
    draw.rectangle((0, top - 2, min(box[2] + 6, image.shape[1]), image.shape[0]), fill=(0, 0, 0))
    draw.text((3, top - 1), line, fill=(255, 255, 255), font=font)
    return np.asarray(picture)


def status_line(record: dict, running_miou: float | None) -> str:
    """``frame 123  KEYFRAME (cut)  stride 8  mIoU 0.812``: what the student did on this frame."""
    parts = [f"frame {record['frame_index']}"]
    if record.get("keyframe"):
        trigger = record.get("trigger")
        parts.append(f"KEYFRAME ({trigger})" if trigger else "KEYFRAME")
    parts.append(f"stride {record['stride']}")
    if running_miou is not None:
        parts.append(f"mIoU {running_miou:.3f}")
    return "  ".join(parts)
