"""Small video files the tests encode themselves."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode_noise(path: Path, frames: int, *, width: int = 160, height: int = 96, fps: int = 30,
                 codec: str = "libx264", options: dict[str, str] | None = None) -> Path:
    """``frames`` frames of seeded noise over a gradient whose brightness follows the frame number."""
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps), options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            image[height // 2:, width // 2:] = (20 + 6 * i) % 256
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path
