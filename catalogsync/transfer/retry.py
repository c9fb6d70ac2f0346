"""Backoff and stoppable waits shared by the downloader and the upload backends."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from catalogsync.errors import TransferError, TransferStopped

T = TypeVar("T")

WAIT_SLICE_SECONDS = 0.25


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: attempt 1 waits up to ``base``, doubling, capped."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
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


class Transient(Exception):
    """Raised by one attempt: worth another try after ``delay`` seconds (None: backoff)."""

    def __init__(self, error: TransferError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class RetriesExhausted(Exception):
    """Every attempt raised ``Transient``; ``error`` is the last one's."""

    def __init__(self, error: TransferError, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


def retrying(
    action: Callable[[], T],
    *,
    max_attempts: int,
    should_stop: Callable[[], bool],
    backoff_base: float,
    backoff_max: float,
    sleep: Callable[[float], None],
    on_retry: Callable[[TransferError, float], None] | None = None,
) -> tuple[T, int]:
    """Run ``action`` until it stops raising ``Transient``; returns (result, attempt number).

    Raises ``TransferStopped`` when asked to stop between attempts, and
    ``RetriesExhausted`` after ``max_attempts``.
    """
    last: TransferError | None = None
    for attempt in range(1, max_attempts + 1):
        if should_stop():
            raise TransferStopped("transfer stopped")
        try:
            return action(), attempt
        except Transient as transient:
            last = transient.error
            if attempt >= max_attempts:
                break
            delay = transient.delay
            if delay is None:
                delay = backoff_delay(attempt, backoff_base, backoff_max)
            if on_retry is not None:
                on_retry(last, delay)  # e.g. a worker row saying "stalled, retrying in 4 s"
            wait_or_stop(delay, should_stop, sleep)
    assert last is not None
    raise RetriesExhausted(last, max_attempts)
