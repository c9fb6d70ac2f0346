"""Song bodies that are real audio streams as far as format detection and tagging go.

The download path records only audio, so tests that move songs serve these instead of
plain random bytes: MPEG-1 Layer III frames (128 kb/s, 44.1 kHz, 417-byte frames) whose
payload is pseudo-random, cut to the size asked for.
"""

from __future__ import annotations

import random

_FRAME_HEADER = b"\xff\xfb\x90\x64"  # MPEG-1 Layer III, 128 kb/s, 44.1 kHz, no padding
_FRAME_BYTES = 417  # 144 * 128000 // 44100


def mp3_body(n: int, seed: int = 12345) -> bytes:
    """``n`` bytes of MP3 frames (n >= 4); the same ``seed`` gives the same bytes."""
    if n < len(_FRAME_HEADER):
        raise ValueError("an MP3 body needs at least 4 bytes")
    rng = random.Random(seed)
    frames = -(-n // _FRAME_BYTES)
    payload = rng.randbytes(frames * (_FRAME_BYTES - len(_FRAME_HEADER)))
    step = _FRAME_BYTES - len(_FRAME_HEADER)
    body = b"".join(_FRAME_HEADER + payload[i * step : (i + 1) * step] for i in range(frames))
    return body[:n]
