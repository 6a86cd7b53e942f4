"""A small PNG drawn in code: the photo the demo's fake WeChat API serves for any media id, so the
dashboard has something to show without a camera (a building at dusk with one window dark)."""

from __future__ import annotations

import functools
import struct
import zlib

WIDTH, HEIGHT = 320, 200


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _pixel(x: int, y: int) -> tuple[int, int, int]:
    if 60 <= x < 260 and 40 <= y < 200:  # the building
        in_window = (x - 75) % 40 < 22 and (y - 55) % 35 < 20 and x < 250 and y < 185
        if in_window:
            dark = 115 <= x < 137 and 90 <= y < 110  # the broken lamp
            return (40, 40, 48) if dark else (250, 214, 120)
        return (150, 120, 100)
    shade = y * 255 // HEIGHT
    return (30 + shade // 3, 50 + shade // 3, 110 + shade // 2)


@functools.cache
def sample_png() -> bytes:
    rows = b"".join(b"\x00" + bytes(c for x in range(WIDTH) for c in _pixel(x, y)) for y in range(HEIGHT))
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )
