"""Backoff and stoppable waits shared by the downloader and the upload backends."""

from __future__ import annotations

import random
from collections.abc import Callable

from catalogsync.errors import TransferStopped

WAIT_SLICE_SECONDS = 0.25


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: attempt 1 waits up to ``base``, doubling, capped."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling * random.uniform(0.5, 1.0)


def wait_or_stop(
    delay: float, should_stop: Callable[[], bool], sleep: Callable[[float], None]
) -> None:
    """Sleep ``delay`` seconds in short slices, raising ``TransferStopped`` when asked."""
    remaining = max(delay, 0.0)
    while remaining > 0:
        if should_stop():
            raise TransferStopped("transfer stopped")
        step = min(remaining, WAIT_SLICE_SECONDS)
        sleep(step)
        remaining -= step
    if should_stop():
        raise TransferStopped("transfer stopped")
