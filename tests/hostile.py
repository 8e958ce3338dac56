"""Small hostile inputs the tests share: files that declare or expand to far more than they hold."""

from __future__ import annotations

import struct
import zlib


def png_declaring(width: int, height: int) -> bytes:
    """An 8-bit grayscale PNG header declaring ``width`` x ``height`` pixels, with no pixel data (57 bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def alias_bomb(levels: int, fan: int = 9) -> str:
    """A YAML config whose ``teacher.class_groups.person`` list nests ``levels`` lists of ``fan`` aliases of the
    list before: a few hundred bytes that expand to ``fan ** levels`` names. Nine levels of nine (under 600
    bytes) took 3-6 GB before a ``MemoryError``; the tests use few enough levels to stay harmless if the
    bound ever goes."""
    anchors = ["&a0 [person, person, person, person, person, person, person, person, person]"]
    anchors += [f"&a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    return "teacher:\n  class_groups:\n    person: [" + ", ".join(anchors) + "]\n"
