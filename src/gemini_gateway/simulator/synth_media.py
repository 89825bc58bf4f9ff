"""Small, valid, deterministic media for generated answers: PNG images and 16-bit PCM audio.

Built with ``zlib``/``struct`` only, so the simulator needs no imaging library. The same prompt
always gives the same bytes, which lets tests compare what reaches a client.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
import zlib
from array import array

PCM_RATE = 24000
PCM_MIME = f"audio/L16;codec=pcm;rate={PCM_RATE}"


def png_for(prompt: str, width: int = 32, height: int = 32) -> bytes:
    """An RGB PNG whose colours come from the prompt's hash: a diagonal gradient."""
    seed = hashlib.sha256(prompt.encode()).digest()
    r0, g0, b0 = seed[0], seed[1], seed[2]
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "None" for each scanline
        for x in range(width):
            shade = (x + y) * 255 // (width + height - 2 or 1)
            rows += bytes(((r0 + shade) % 256, (g0 + shade // 2) % 256, (b0 + 255 - shade) % 256))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pcm_tone(words: int, frequency: float = 440.0) -> bytes:
    """Mono 16-bit little-endian PCM at 24 kHz: a tenth of a second per word, 1 to 50 words."""
    samples = PCM_RATE // 10 * max(1, min(50, words))
    step = 2 * math.pi * frequency / PCM_RATE
    tone = array("h", (int(8000 * math.sin(i * step)) for i in range(samples)))
    if sys.byteorder == "big":
        tone.byteswap()
    return tone.tobytes()
