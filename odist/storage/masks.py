"""Compact mask encoding: a zlib-compressed row-major uint8 class map.

Decode with numpy alone::

    np.frombuffer(zlib.decompress(data), np.uint8).reshape(height, width)
"""

from __future__ import annotations

import zlib

import numpy as np

ENCODING = "zlib-u8"


def encode_mask(classes: np.ndarray, level: int = 6) -> bytes:
    """Encode an (H, W) uint8 class map."""
    if classes.dtype != np.uint8 or classes.ndim != 2:
        raise ValueError(f"expected an (H, W) uint8 class map, got {classes.dtype} {classes.shape}")
    return zlib.compress(np.ascontiguousarray(classes).tobytes(), level)


def decode_mask(data: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`encode_mask`."""
    return np.frombuffer(zlib.decompress(data), np.uint8).reshape(height, width)
